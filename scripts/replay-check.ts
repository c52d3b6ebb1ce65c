/**
 * `./lia replay-check`: before a new workflow bundle goes out, replay every open task's history
 * (from the Temporal cluster in LIA__TEMPORAL__ADDRESS, namespace LIA__TEMPORAL__NAMESPACE)
 * through the bundle built from this checkout. A run whose history the new code would not
 * replay is named, and the command exits 1: deploying would break that task.
 */
import { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { loadConfigOrExit } from '../common/config.js';
import { ensureWorkflowBundle } from '../workers/bundle.js';
import { connectClientTemporal } from '../workers/temporal-connection.js';
import { WORKFLOW_TYPE } from '../workflows/definitions.js';

const config = loadConfigOrExit();
const address = config.temporal.address;
if (!address) {
  process.stderr.write('set LIA__TEMPORAL__ADDRESS to the Temporal cluster whose open tasks to replay\n');
  process.exit(2);
}
const say = (m: string) => process.stderr.write(`${m}\n`);
const connection = await connectClientTemporal(config, address);
const client = new Client({ connection, namespace: config.temporal.namespace });
const bundle = await ensureWorkflowBundle(config.state.dir, say);
const query = `WorkflowType = "${WORKFLOW_TYPE}" AND ExecutionStatus = "Running"`;
say(`[replay] open tasks in ${address}/${config.temporal.namespace} against ${bundle}…`);
let replayed = 0;
const broken: string[] = [];
for await (const r of Worker.runReplayHistories(
  { workflowBundle: { codePath: bundle } },
  client.workflow.list({ query }).intoHistories(),
)) {
  replayed++;
  if (r.error) broken.push(`${r.workflowId}: ${r.error.message}`);
}
await connection.close();
if (broken.length) {
  say(`[replay] ${broken.length} of ${replayed} open tasks would break with this code:`);
  for (const b of broken) say(`  ${b}`);
  process.exit(1);
}
say(`[replay] all ${replayed} open tasks replay with this code`);
