// Azure SQL logical server and database: the legacy source store (change tracking is enabled in the database
// by the one-time set-up in infra/README.md; it is data plane, not ARM). Entra ID only: no SQL login exists, so
// there is no password anywhere.

param serverName string
param databaseName string
param location string
param tags object

@description('Display name of the Entra ID administrator (a group is best).')
param entraAdminLogin string

@description('Object id of the Entra ID administrator.')
param entraAdminObjectId string

@allowed(['User', 'Group', 'Application'])
param entraAdminPrincipalType string

@description('Database SKU, e.g. { name: \'Basic\', tier: \'Basic\' } or { name: \'GP_S_Gen5\', tier: \'GeneralPurpose\', family: \'Gen5\', capacity: 2 }.')
param databaseSku object

@description('Minutes of inactivity before a serverless database pauses (-1: never). Ignored by other tiers.')
param autoPauseDelayMinutes int

@description('Allow connections from Azure services (firewall rule 0.0.0.0). Flex Consumption has no fixed outbound addresses, so without a virtual network this is how the app reaches the server; Entra ID-only authentication still applies.')
param allowAzureServices bool

@allowed(['Enabled', 'Disabled'])
param publicNetworkAccess string

var serverless = startsWith(string(databaseSku.name), 'GP_S_')

resource server 'Microsoft.Sql/servers@2025-01-01' = {
  name: serverName
  location: location
  tags: tags
  properties: {
    // Not 1.3: the app's SqlClient connects with Encrypt=True, which cannot log in to a server that requires TLS 1.3
    // (dotnet/SqlClient#2546); that would take Encrypt=Strict.
    minimalTlsVersion: '1.2'
    publicNetworkAccess: publicNetworkAccess
    restrictOutboundNetworkAccess: 'Disabled'
    administrators: {
      administratorType: 'ActiveDirectory'
      azureADOnlyAuthentication: true
      login: entraAdminLogin
      sid: entraAdminObjectId
      principalType: entraAdminPrincipalType
      tenantId: tenant().tenantId
    }
  }
}

resource entraOnly 'Microsoft.Sql/servers/azureADOnlyAuthentications@2025-01-01' = {
  parent: server
  name: 'Default'
  properties: {
    azureADOnlyAuthentication: true
  }
}

resource azureServices 'Microsoft.Sql/servers/firewallRules@2025-01-01' = if (allowAzureServices && publicNetworkAccess == 'Enabled') {
  parent: server
  name: 'AllowAllWindowsAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

resource database 'Microsoft.Sql/servers/databases@2025-01-01' = {
  parent: server
  name: databaseName
  location: location
  tags: tags
  sku: databaseSku
  properties: serverless ? {
    autoPauseDelay: autoPauseDelayMinutes
    minCapacity: json('0.5')
    requestedBackupStorageRedundancy: 'Local'
  } : {
    requestedBackupStorageRedundancy: 'Local'
  }
}

output serverName string = server.name
output fullyQualifiedDomainName string = server.properties.fullyQualifiedDomainName
output databaseName string = database.name
