// Rollout in Azure: the Functions app (HTTP API, durable rollout orchestration, timers), its storage and Durable
// Task hub, the legacy Azure SQL store, the target Cosmos DB store, Application Insights on Log Analytics with the
// rollout workbook and alerts, and the one user-assigned identity everything is reached with. No keys, no
// passwords: see infra/README.md.
targetScope = 'resourceGroup'

@description('Environment name; part of every resource name.')
@allowed(['dev', 'prod'])
param environmentName string

@description('Short lower-case prefix of resource names (letters and digits).')
@minLength(2)
@maxLength(8)
param namePrefix string = 'rollout'

param location string = resourceGroup().location

@description('FlexConsumption (pay per execution, scales to zero) or Premium (always-warm Elastic Premium instances).')
@allowed(['FlexConsumption', 'Premium'])
param hostingPlan string = 'FlexConsumption'

@description('Premium only: plan SKU.')
@allowed(['EP1', 'EP2', 'EP3'])
param premiumSku string = 'EP1'

@description('Premium only: always-ready instances (each one is billed all the time).')
@minValue(1)
param premiumMinimumInstances int = 1

@description('Flex Consumption only: most instances.')
@minValue(40)
@maxValue(1000)
param flexMaximumInstanceCount int = 40

@description('Flex Consumption only: instance memory in MB.')
@allowed([512, 2048, 4096])
param flexInstanceMemoryMB int = 2048

@description('.NET version of the isolated worker; the app targets net10.0, so only 10.0 runs it.')
param dotnetVersion string = '10.0'

@description('Enabled: the endpoints are reachable from the internet (authentication still required everywhere). Disabled needs private endpoints and a virtual network, which this template does not create.')
@allowed(['Enabled', 'Disabled'])
param publicNetworkAccess string = 'Enabled'

@description('Lowest TLS version the Function App (site and SCM) accepts. Storage and Cosmos DB stay at TLS 1.2 (neither can require more), and so does Azure SQL: the app connects with Encrypt=True, which cannot log in to a server that requires TLS 1.3.')
@allowed(['1.2', '1.3'])
param minimumTlsVersion string = '1.2'

@description('Disabled: no FTP at all. FtpsOnly: FTP over TLS for diagnostics (deployment never needs it). Plain FTP is not offered.')
@allowed(['Disabled', 'FtpsOnly'])
param ftpsState string = 'Disabled'

@description('True: the Function App redirects HTTP to HTTPS. (The storage account refuses HTTP whatever this says: its clients send bearer tokens.)')
param httpsOnly bool = true

@description('Entra ID administrator of the SQL server (display name and object id; a group is best).')
param sqlEntraAdminLogin string

param sqlEntraAdminObjectId string

@allowed(['User', 'Group', 'Application'])
param sqlEntraAdminPrincipalType string = 'Group'

@description('SQL database SKU.')
param sqlDatabaseSku object = {
  name: 'Basic'
  tier: 'Basic'
}

@description('Serverless SQL only: minutes idle before the database pauses (-1: never). The change-feed timer polls the database, so it pauses only while that timer is stopped.')
param sqlAutoPauseDelayMinutes int = 60

@description('Let Azure services through the SQL firewall (Flex Consumption has no fixed outbound addresses).')
param sqlAllowAzureServices bool = true

@description('Cosmos DB: serverless (nothing billed at idle but storage) or autoscale throughput shared by the database.')
param cosmosServerless bool = true

@minValue(1000)
param cosmosAutoscaleMaxThroughput int = 1000

param cosmosDatabaseName string = 'rollout'

@description('The target container of the feature and its partition key (the spec\'s target.container and target.partitionKey).')
param cosmosTargetContainerName string = 'orders'

param cosmosTargetPartitionKeyPath string = '/customerId'

@description('Timer schedules (NCRONTAB, six fields) and budgets of the app.')
param changeFeedSchedule string = '*/10 * * * * *'
param reconcileSchedule string = '0 */15 * * * *'
param healthMonitorSchedule string = '0 * * * * *'
param changeFeedBudget string = '00:04:00'
param healthWindow string = '00:05:00'

@description('The spec of the feature the app serves: a *.rollout.json of samples/ (the app is published with them under specs/). Its target container and partition key must match the cosmosTarget* parameters.')
param rolloutSpecFile string = 'orders.rollout.json'

@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@description('Daily Log Analytics ingestion cap in GB (-1: none).')
param logDailyQuotaGb int = -1

@description('Principal ids (managed identities) of the application(s) that host the gate and export its telemetry to this Application Insights: each gets Monitoring Metrics Publisher on it.')
param telemetryPublisherPrincipalIds array = []

@description('E-mail address for the alerts; empty: no action group.')
param alertEmail string = ''

@description('Open (unresolved) dead letters of a feature above which the dead-letter alert fires; 0: any.')
@minValue(0)
param deadLetterAlertThreshold int = 0

param feedLagAlertMinutes int = 15

@description('Object id of the CI/CD service principal: gets blob write access to the package container only (Premium deploys upload the package there). Empty: none.')
param deployerPrincipalId string = ''

param tags object = {}

var allTags = union(tags, {
  application: 'rollout'
  environment: environmentName
})
var suffix = uniqueString(resourceGroup().id, namePrefix, environmentName)
var baseName = '${namePrefix}-${environmentName}'
var packageContainerName = 'app-package'
var packageBlobName = 'rollout-functions.zip'

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: 'id-${baseName}'
  location: location
  tags: allTags
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: take('st${namePrefix}${environmentName}${suffix}', 24)
    location: location
    tags: allTags
    appIdentityName: identity.name
    // Only the Premium plan's package is uploaded by the deployer; Flex Consumption's is written by the platform.
    deployerPrincipalId: hostingPlan == 'Premium' ? deployerPrincipalId : ''
    packageContainerName: packageContainerName
    publicNetworkAccess: publicNetworkAccess
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    workspaceName: 'log-${baseName}-${suffix}'
    appInsightsName: 'appi-${baseName}-${suffix}'
    location: location
    tags: allTags
    appIdentityName: identity.name
    retentionInDays: logRetentionInDays
    dailyQuotaGb: logDailyQuotaGb
    telemetryPublisherPrincipalIds: telemetryPublisherPrincipalIds
    publicNetworkAccess: publicNetworkAccess
  }
}

module cosmos 'modules/cosmos.bicep' = {
  name: 'cosmos'
  params: {
    accountName: 'cosmos-${baseName}-${suffix}'
    location: location
    tags: allTags
    appIdentityName: identity.name
    databaseName: cosmosDatabaseName
    targetContainerName: cosmosTargetContainerName
    targetPartitionKeyPath: cosmosTargetPartitionKeyPath
    serverless: cosmosServerless
    autoscaleMaxThroughput: cosmosAutoscaleMaxThroughput
    publicNetworkAccess: publicNetworkAccess
  }
}

module sql 'modules/sql.bicep' = {
  name: 'sql'
  params: {
    serverName: 'sql-${baseName}-${suffix}'
    databaseName: 'rollout'
    location: location
    tags: allTags
    entraAdminLogin: sqlEntraAdminLogin
    entraAdminObjectId: sqlEntraAdminObjectId
    entraAdminPrincipalType: sqlEntraAdminPrincipalType
    databaseSku: sqlDatabaseSku
    autoPauseDelayMinutes: sqlAutoPauseDelayMinutes
    allowAzureServices: sqlAllowAzureServices
    publicNetworkAccess: publicNetworkAccess
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    appName: 'func-${baseName}-${suffix}'
    planName: 'plan-${baseName}-${suffix}'
    location: location
    tags: allTags
    hostingPlan: hostingPlan
    premiumSku: premiumSku
    premiumMinimumInstances: premiumMinimumInstances
    flexMaximumInstanceCount: flexMaximumInstanceCount
    flexInstanceMemoryMB: flexInstanceMemoryMB
    dotnetVersion: dotnetVersion
    minimumTlsVersion: minimumTlsVersion
    ftpsState: ftpsState
    httpsOnly: httpsOnly
    identityId: identity.id
    identityClientId: identity.properties.clientId
    storageAccountName: storage.outputs.name
    packageContainerUrl: storage.outputs.packageContainerUrl
    packageBlobName: packageBlobName
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    workspaceCustomerId: monitoring.outputs.workspaceCustomerId
    cosmosEndpoint: cosmos.outputs.endpoint
    cosmosDatabaseName: cosmosDatabaseName
    cosmosContainerName: cosmosTargetContainerName
    sqlServerFqdn: sql.outputs.fullyQualifiedDomainName
    sqlDatabaseName: sql.outputs.databaseName
    changeFeedSchedule: changeFeedSchedule
    reconcileSchedule: reconcileSchedule
    healthMonitorSchedule: healthMonitorSchedule
    rolloutSpecFile: rolloutSpecFile
    changeFeedBudget: changeFeedBudget
    healthWindow: healthWindow
    publicNetworkAccess: publicNetworkAccess
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    location: location
    tags: allTags
    namePrefix: baseName
    workspaceId: monitoring.outputs.workspaceId
    workbookSerializedData: loadTextContent('monitoring/rollout.workbook.json')
    alertEmail: alertEmail
    deadLetterThreshold: deadLetterAlertThreshold
    feedLagMinutes: feedLagAlertMinutes
  }
}

@description('Host name of the Function App (the HTTP API is https://<this>/api/rollouts).')
output functionAppHostName string = functionApp.outputs.defaultHostName
output functionAppName string = functionApp.outputs.name
output hostingPlan string = hostingPlan
output cosmosEndpoint string = cosmos.outputs.endpoint
output sqlServerName string = sql.outputs.serverName
output sqlServerFqdn string = sql.outputs.fullyQualifiedDomainName
output sqlDatabaseName string = sql.outputs.databaseName
output storageAccountName string = storage.outputs.name
output packageContainerName string = packageContainerName
output packageBlobName string = packageBlobName
output managedIdentityName string = identity.name
output managedIdentityClientId string = identity.properties.clientId
output workbookId string = alerts.outputs.workbookId
