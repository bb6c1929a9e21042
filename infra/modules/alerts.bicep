// The rollout's Azure Monitor views: the workbook (one per deployment, every feature selectable) and log
// alerts on the workspace. All queries read the tables workspace-based Application Insights fills from the
// app's OpenTelemetry export (AppMetrics, AppDependencies, AppTraces).

param location string
param tags object
param namePrefix string

@description('Resource id of the Log Analytics workspace the queries run against.')
param workspaceId string

@description('The workbook, serialized (infra/monitoring/rollout.workbook.json, generated from the health query by the infra tests).')
param workbookSerializedData string

@description('E-mail address that receives the alerts; empty creates no action group (the alerts still fire in the portal).')
param alertEmail string

@description('Open (unresolved) dead letters of a feature above which the dead-letter alert fires.')
@minValue(0)
param deadLetterThreshold int

@description('Minutes the change feed may trail the gate\'s last write before the feed-lag alert fires.')
@minValue(1)
param feedLagMinutes int

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, namePrefix, 'rollout-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'Rollout (${namePrefix})'
    category: 'workbook'
    sourceId: workspaceId
    serializedData: replace(workbookSerializedData, '__WORKSPACE_RESOURCE_ID__', workspaceId)
  }
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: '${namePrefix}-rollout-alerts'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'rollout'
    enabled: true
    emailReceivers: [
      {
        name: 'operators'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var actionGroups = empty(alertEmail) ? [] : [actionGroup.id]

// One alert per feature (the feature is a dimension of each rule).
var featureDimension = [
  {
    name: 'feature'
    operator: 'Include'
    values: ['*']
  }
]

// Rollbacks (monitoring/rollback.kql) ingested since the previous evaluation, 5 min ago. The window is three
// evaluations long so that a record that reaches the workspace late (after the evaluation that follows its time)
// is still in it; counting by ingestion time keeps one alert per rollback however many windows a record is in.
var rollbackAlertQuery = '${loadTextContent('../monitoring/rollback.kql')}| where ingested > ago(5m)\n| summarize rollbacks = sum(rollbacks) by feature\n'

resource rollbackAlert 'Microsoft.Insights/scheduledQueryRules@2026-03-01' = {
  name: '${namePrefix}-rollout-rollback'
  location: location
  tags: tags
  properties: {
    displayName: 'Rollout: a rollout rolled back'
    description: 'The orchestration set a feature\'s exposure back to 0 (health breach, refused or timed-out approval, or an operator\'s rollback).'
    severity: 1
    enabled: true
    scopes: [workspaceId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: rollbackAlertQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'rollbacks'
          dimensions: featureDimension
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: actionGroups
    }
  }
}

// The dead-letter backlog (monitoring/dead-letters.kql): the most open dead letters the Functions app's gauge reported
// in the last 30 min (it is exported every minute; the window spans two evaluations, so a late record is not missed).
resource deadLetterAlert 'Microsoft.Insights/scheduledQueryRules@2026-03-01' = {
  name: '${namePrefix}-rollout-dead-letters'
  location: location
  tags: tags
  properties: {
    displayName: 'Rollout: dead letters waiting'
    description: 'More than ${deadLetterThreshold} dead letters of the feature are open (changes the feed could not apply, not yet resolved; see rollout dead-letters). Resolves once the backlog is back at or under the threshold for a whole window.'
    severity: 2
    enabled: true
    scopes: [workspaceId]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT30M'
    criteria: {
      allOf: [
        {
          query: loadTextContent('../monitoring/dead-letters.kql')
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'openDeadLetters'
          dimensions: featureDimension
          operator: 'GreaterThan'
          threshold: deadLetterThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

// Feed lag from what the app already measures (monitoring/feed-lag.kql): the oldest successful write through the gate
// that no dual-write batch has followed (allowing 2 min for the two apps' export schedules). The 6 h window bounds how
// long a stopped feed keeps the alert firing.
resource feedLagAlert 'Microsoft.Insights/scheduledQueryRules@2026-03-01' = {
  name: '${namePrefix}-rollout-feed-lag'
  location: location
  tags: tags
  properties: {
    displayName: 'Rollout: change feed lagging'
    description: 'A write went through the gate more than ${feedLagMinutes} minutes ago, over 2 minutes after the change feed\'s last batch, and the feed has applied no batch since.'
    severity: 2
    enabled: true
    scopes: [workspaceId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT6H'
    criteria: {
      allOf: [
        {
          query: loadTextContent('../monitoring/feed-lag.kql')
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'lagMinutes'
          dimensions: featureDimension
          operator: 'GreaterThan'
          threshold: feedLagMinutes
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

output workbookId string = workbook.id
