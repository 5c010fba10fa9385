/** Entry point of the workflow bundle: every workflow type the worker runs. */
export { blockWorkflow } from './block';
export { groupWorkflow } from './group';
export { reconcileWorkflow } from './reconcile';
export { allowlistWorkflow } from './allowlist';
export { notifyWorkflow } from './notify';
