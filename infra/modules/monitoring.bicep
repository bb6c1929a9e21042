// Log Analytics workspace and workspace-based Application Insights, both with local (key) authentication
// disabled: telemetry is ingested with the app identity's Entra ID token (Monitoring Metrics Publisher) and the
// health monitor reads the workspace with it (Log Analytics Reader).

param workspaceName string
param appInsightsName string
param location string
param tags object

@description('Name of the app\'s user-assigned managed identity (in this resource group).')
param appIdentityName string

@description('Principal ids of other identities that send the Rollout meter to this Application Insights (the application that hosts the gate). Each gets Monitoring Metrics Publisher on it.')
param telemetryPublisherPrincipalIds array

@description('Days of retention in the workspace (30 is included in the ingestion price).')
@minValue(30)
@maxValue(730)
param retentionInDays int

@description('Daily ingestion cap in GB (-1: none). Caps the bill of a runaway workload; a capped workspace stops ingesting for the rest of the day, and then the health monitor sees too few samples.')
param dailyQuotaGb int

@allowed(['Enabled', 'Disabled'])
param publicNetworkAccess string

var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
var logAnalyticsReader = '73c42c96-874c-492b-b04d-ab87d138a893'

// Referenced by name so that role assignment names are known before deployment (what-if sees them).
resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' existing = {
  name: appIdentityName
}

resource workspace 'Microsoft.OperationalInsights/workspaces@2025-02-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    workspaceCapping: {
      dailyQuotaGb: dailyQuotaGb
    }
    features: {
      disableLocalAuth: true
    }
    publicNetworkAccessForIngestion: publicNetworkAccess
    publicNetworkAccessForQuery: publicNetworkAccess
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
    publicNetworkAccessForIngestion: publicNetworkAccess
    publicNetworkAccessForQuery: publicNetworkAccess
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, appIdentity.id, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource otherPublishers 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principalId in telemetryPublisherPrincipalIds: {
    name: guid(appInsights.id, principalId, monitoringMetricsPublisher)
    scope: appInsights
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
      principalId: principalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource workspaceReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, appIdentity.id, logAnalyticsReader)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', logAnalyticsReader)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

output workspaceId string = workspace.id
@description('The workspace\'s customerId (a GUID): what the Log Analytics query API calls the workspace id.')
output workspaceCustomerId string = workspace.properties.customerId
output appInsightsId string = appInsights.id
output appInsightsConnectionString string = appInsights.properties.ConnectionString
