// Cosmos DB for NoSQL: the target store (one container; leases, checkpoints, dead letters and the audit trail live
// in Azure SQL beside the source). Keys are disabled (disableLocalAuth): the app reaches the data plane
// with its managed identity through the built-in data contributor role.

param accountName string
param location string
param tags object

@description('Name of the app\'s user-assigned managed identity (in this resource group).')
param appIdentityName string

param databaseName string

@description('The target container (the feature\'s new documents) and its partition key path.')
param targetContainerName string
param targetPartitionKeyPath string

@description('Serverless (pay per request, nothing at idle but storage) or provisioned autoscale throughput shared by the database.')
param serverless bool

@description('Autoscale maximum RU/s of the database when not serverless (scales down to 10 % of it at idle).')
@minValue(1000)
param autoscaleMaxThroughput int

@allowed(['Enabled', 'Disabled'])
param publicNetworkAccess string

// Cosmos DB Built-in Data Contributor (a data-plane role of the account, not an Azure RBAC role).
var cosmosDataContributor = '00000000-0000-0000-0000-000000000002'

// Referenced by name so that role assignment names are known before deployment (what-if sees them).
resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' existing = {
  name: appIdentityName
}

resource account 'Microsoft.DocumentDB/databaseAccounts@2025-04-15' = {
  name: accountName
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    capabilities: serverless ? [
      {
        name: 'EnableServerless'
      }
    ] : []
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: publicNetworkAccess
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2025-04-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
    options: serverless ? {} : {
      autoscaleSettings: {
        maxThroughput: autoscaleMaxThroughput
      }
    }
  }
}

resource target 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2025-04-15' = {
  parent: database
  name: targetContainerName
  properties: {
    resource: {
      id: targetContainerName
      partitionKey: {
        paths: [targetPartitionKeyPath]
        kind: 'Hash'
        version: 2
      }
    }
  }
}

// Account scope, as the SDK reads the account's metadata (regions, partition map) as well as the database's
// documents; the role itself grants data actions only (no keys, no control plane).
resource dataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2025-04-15' = {
  parent: account
  name: guid(account.id, appIdentity.id, cosmosDataContributor)
  properties: {
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${cosmosDataContributor}'
    principalId: appIdentity.properties.principalId
    scope: account.id
  }
}

output endpoint string = account.properties.documentEndpoint
output accountName string = account.name
