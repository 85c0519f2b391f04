import type { Migration } from 'kysely';
import * as eventStore from './20261121000100_event_store.js';
import * as appendFunction from './20261121000200_append_function.js';
import * as projections from './20261121000300_projections.js';
import * as projectionParked from './20261201000100_projection_parked.js';
import * as tamperEvidence from './20261201000200_tamper_evidence.js';
import * as databaseRoles from './20261201000400_database_roles.js';
import * as auditActions from './20261201000500_audit_actions.js';
import * as appAnswers from './20261201000800_app_answers.js';
import * as retranslation from './20261202000100_retranslation.js';
import * as leanAppend from './20261202000200_lean_append.js';
import * as bulkImport from './20261202000300_bulk_import.js';
import * as dailyRollupRoles from './20261202000400_daily_rollup_roles.js';
import * as numberSearch from './20261202000500_number_search.js';
import * as getDeliveries from './20261202000800_get_deliveries.js';
import * as erasure from './20261203000100_erasure.js';
import * as partitionedStore from './20261203000200_partitioned_store.js';
import * as retention from './20261203000210_retention.js';
import * as genericAppendPlans from './20261203000400_generic_append_plans.js';
import * as stagedAppendByDedupeKey from './20261203000500_staged_append_by_dedupe_key.js';
import * as accountKey from './20261204000100_account_key.js';
import * as erasureFence from './20261204000200_erasure_fence.js';
import * as rolesCoverAllGrants from './20261204000600_roles_cover_all_grants.js';
import * as leanAppendCall from './20261205000100_lean_append_call.js';
import * as leanCheckpointHeads from './20261206000200_lean_checkpoint_heads.js';
import * as numberGrams5 from './20261206000300_number_grams5.js';
import * as numberGrams5Linear from './20261206000400_number_grams5_linear.js';

/**
 * Static registry: Kysely's FileMigrationProvider imports files at run time, which breaks under Vitest on
 * Node 20 and in bundles. Names sort in application order.
 */
export const migrations: Record<string, Migration> = {
  '20261121000100_event_store': eventStore,
  '20261121000200_append_function': appendFunction,
  '20261121000300_projections': projections,
  '20261201000100_projection_parked': projectionParked,
  '20261201000200_tamper_evidence': tamperEvidence,
  '20261201000400_database_roles': databaseRoles,
  '20261201000500_audit_actions': auditActions,
  '20261201000800_app_answers': appAnswers,
  '20261202000100_retranslation': retranslation,
  '20261202000200_lean_append': leanAppend,
  '20261202000300_bulk_import': bulkImport,
  '20261202000400_daily_rollup_roles': dailyRollupRoles,
  '20261202000500_number_search': numberSearch,
  '20261202000800_get_deliveries': getDeliveries,
  '20261203000100_erasure': erasure,
  '20261203000200_partitioned_store': partitionedStore,
  '20261203000210_retention': retention,
  '20261203000400_generic_append_plans': genericAppendPlans,
  '20261203000500_staged_append_by_dedupe_key': stagedAppendByDedupeKey,
  '20261204000100_account_key': accountKey,
  '20261204000200_erasure_fence': erasureFence,
  '20261204000600_roles_cover_all_grants': rolesCoverAllGrants,
  '20261205000100_lean_append_call': leanAppendCall,
  '20261206000200_lean_checkpoint_heads': leanCheckpointHeads,
  '20261206000300_number_grams5': numberGrams5,
  '20261206000400_number_grams5_linear': numberGrams5Linear,
};
