/** Entry point of the workflow bundle: every workflow type the worker runs (first-release types replay and migrate). */
export { ipBlock } from './block';
export { enforcer } from './enforcer';
export { reconcileTarget } from './reconcile';
export { blockWorkflow } from './legacy/block';
export { groupWorkflow } from './legacy/group';
export { reconcileWorkflow } from './legacy/reconcile';
export { allowlistWorkflow } from './allowlist';
export { notifyWorkflow } from './notify';
