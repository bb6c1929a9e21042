// The Functions app (.NET isolated worker) and its plan: Flex Consumption by default, Elastic Premium when
// asked. Identity-based connections only; no app setting holds a key, a password or a SAS.

param appName string
param planName string
param location string
param tags object

@allowed(['FlexConsumption', 'Premium'])
param hostingPlan string

@description('Premium only: the plan SKU (EP1, EP2, EP3).')
@allowed(['EP1', 'EP2', 'EP3'])
param premiumSku string

@description('Premium only: instances kept warm (at least 1: a Premium plan always bills one).')
@minValue(1)
param premiumMinimumInstances int

@description('Flex Consumption only: most instances the app scales out to.')
@minValue(40)
@maxValue(1000)
param flexMaximumInstanceCount int

@description('Flex Consumption only: memory of one instance in MB.')
@allowed([512, 2048, 4096])
param flexInstanceMemoryMB int

@description('.NET version of the isolated worker (the app targets net10.0).')
param dotnetVersion string

@description('Lowest TLS version the site and its SCM endpoint accept.')
@allowed(['1.2', '1.3'])
param minimumTlsVersion string

@allowed(['Disabled', 'FtpsOnly'])
param ftpsState string

param httpsOnly bool

@description('Resource id of the user-assigned managed identity the app runs as.')
param identityId string

@description('Client id of that identity (settings name it so that the SDKs pick it rather than any other).')
param identityClientId string

param storageAccountName string
param packageContainerUrl string

@description('Premium only: the package blob the app runs from (uploaded by the deploy workflow).')
param packageBlobName string

param appInsightsConnectionString string
param workspaceCustomerId string

param cosmosEndpoint string
param cosmosDatabaseName string
param cosmosContainerName string

param sqlServerFqdn string
param sqlDatabaseName string

@description('NCRONTAB schedules of the three timers, and the timers\' budgets (see README, "The Azure Functions app").')
param changeFeedSchedule string
param reconcileSchedule string
param healthMonitorSchedule string
param changeFeedBudget string
param healthWindow string

@description('The spec of the feature this app serves, a file of samples/ deployed with the app under specs/.')
param rolloutSpecFile string

@allowed(['Enabled', 'Disabled'])
param publicNetworkAccess string

var isFlex = hostingPlan == 'FlexConsumption'

// Every setting the app reads (README: "The Azure Functions app"; the storage adapters' names agreed with
// their authors). Identity everywhere: the client id picks the user-assigned identity.
var commonSettings = [
  { name: 'AzureWebJobsStorage__accountName', value: storageAccountName }
  { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
  { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsightsConnectionString }
  // Local authentication is disabled on Application Insights: the host's own logs need the identity too.
  { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identityClientId};Authorization=AAD' }
  { name: 'RolloutChangeFeedSchedule', value: changeFeedSchedule }
  { name: 'RolloutReconcileSchedule', value: reconcileSchedule }
  { name: 'RolloutHealthMonitorSchedule', value: healthMonitorSchedule }
  { name: 'Rollout__Timers__ChangeFeedBudget', value: changeFeedBudget }
  { name: 'Rollout__Timers__HealthWindow', value: healthWindow }
  { name: 'Rollout__AzureMonitor__WorkspaceId', value: workspaceCustomerId }
  { name: 'Rollout__AzureMonitor__ManagedIdentityClientId', value: identityClientId }
  { name: 'Rollout__SpecPath', value: 'specs/${rolloutSpecFile}' }
  { name: 'Rollout__Cosmos__Endpoint', value: cosmosEndpoint }
  { name: 'Rollout__Cosmos__Database', value: cosmosDatabaseName }
  { name: 'Rollout__Cosmos__Container', value: cosmosContainerName }
  { name: 'Rollout__Cosmos__UseManagedIdentity', value: 'true' }
  { name: 'Rollout__Cosmos__ManagedIdentityClientId', value: identityClientId }
  {
    name: 'Rollout__SqlServer__ConnectionString'
    value: 'Server=tcp:${sqlServerFqdn},1433;Database=${sqlDatabaseName};Authentication=Active Directory Managed Identity;User Id=${identityClientId};Encrypt=True;TrustServerCertificate=False;Connect Timeout=30'
  }
]

// Flex Consumption takes the runtime from functionAppConfig and refuses these settings; Premium needs them, and
// runs from the package blob read with the identity (no Azure Files content share: that would need a key).
var premiumSettings = [
  { name: 'FUNCTIONS_EXTENSION_VERSION', value: '~4' }
  { name: 'FUNCTIONS_WORKER_RUNTIME', value: 'dotnet-isolated' }
  { name: 'WEBSITE_RUN_FROM_PACKAGE', value: '${packageContainerUrl}/${packageBlobName}' }
  { name: 'WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID', value: identityId }
]

resource plan 'Microsoft.Web/serverfarms@2025-03-01' = {
  name: planName
  location: location
  tags: tags
  kind: isFlex ? 'functionapp' : 'elastic'
  sku: isFlex ? {
    name: 'FC1'
    tier: 'FlexConsumption'
  } : {
    name: premiumSku
    tier: 'ElasticPremium'
  }
  properties: {
    reserved: true
    maximumElasticWorkerCount: isFlex ? null : max(premiumMinimumInstances, 20)
  }
}

resource app 'Microsoft.Web/sites@2025-03-01' = {
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: httpsOnly
    publicNetworkAccess: publicNetworkAccess
    keyVaultReferenceIdentity: identityId
    functionAppConfig: isFlex ? {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: packageContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: flexMaximumInstanceCount
        instanceMemoryMB: flexInstanceMemoryMB
      }
      runtime: {
        name: 'dotnet-isolated'
        version: dotnetVersion
      }
    } : null
    siteConfig: {
      minTlsVersion: minimumTlsVersion
      scmMinTlsVersion: minimumTlsVersion
      ftpsState: ftpsState
      http20Enabled: true
      linuxFxVersion: isFlex ? null : 'DOTNET-ISOLATED|${dotnetVersion}'
      minimumElasticInstanceCount: isFlex ? null : premiumMinimumInstances
      appSettings: isFlex ? commonSettings : concat(commonSettings, premiumSettings)
    }
  }
}

// No publishing with a user name and password: deployments authenticate with Entra ID (the workflow's OIDC login).
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = app.name
output defaultHostName string = app.properties.defaultHostName
