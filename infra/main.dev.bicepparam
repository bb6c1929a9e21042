// Development: the cheapest shape that runs the whole thing. Flex Consumption, serverless Cosmos DB, Basic SQL.
using 'main.bicep'

param environmentName = 'dev'
param hostingPlan = 'FlexConsumption'
param cosmosServerless = true
param sqlDatabaseSku = {
  name: 'Basic'
  tier: 'Basic'
}
// Set by the deploy workflow from the environment's variables (readEnvironmentVariable reads them at build time).
param sqlEntraAdminLogin = readEnvironmentVariable('SQL_ENTRA_ADMIN_LOGIN', 'rollout-sql-admins')
param sqlEntraAdminObjectId = readEnvironmentVariable('SQL_ENTRA_ADMIN_OBJECT_ID')
param deployerPrincipalId = readEnvironmentVariable('AZURE_DEPLOYER_OBJECT_ID', '')
param alertEmail = readEnvironmentVariable('ROLLOUT_ALERT_EMAIL', '')
param logDailyQuotaGb = 1
