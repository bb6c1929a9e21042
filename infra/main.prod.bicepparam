// Production: still Flex Consumption (set hostingPlan = 'Premium' for always-warm instances), provisioned Cosmos DB
// throughput (autoscale), a General Purpose serverless SQL database that never pauses (the change feed polls it).
using 'main.bicep'

param environmentName = 'prod'
param hostingPlan = 'FlexConsumption'
param premiumSku = 'EP1'
param cosmosServerless = false
param cosmosAutoscaleMaxThroughput = 1000
param sqlDatabaseSku = {
  name: 'GP_S_Gen5'
  tier: 'GeneralPurpose'
  family: 'Gen5'
  capacity: 2
}
param sqlAutoPauseDelayMinutes = -1
param sqlEntraAdminLogin = readEnvironmentVariable('SQL_ENTRA_ADMIN_LOGIN', 'rollout-sql-admins')
param sqlEntraAdminObjectId = readEnvironmentVariable('SQL_ENTRA_ADMIN_OBJECT_ID')
param deployerPrincipalId = readEnvironmentVariable('AZURE_DEPLOYER_OBJECT_ID', '')
param alertEmail = readEnvironmentVariable('ROLLOUT_ALERT_EMAIL', '')
param logRetentionInDays = 90
param deadLetterAlertThreshold = 0
param feedLagAlertMinutes = 10
