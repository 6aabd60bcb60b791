/**
 * The computing half of plan, apply and verify, imported on demand: it loads TensorFlow.js
 * (~0.35 s a process), so a command imports it only once the edit files and the state check out,
 * and a bad input fails without it.
 */
export async function loadCompute() {
  const [backend, applyPlan, registry, stats, judging] = await Promise.all([
    import('../tensor/backend.js'),
    import('../apply/apply-plan.js'),
    import('../editor/registry.js'),
    import('../editor/stats.js'),
    import('./judging.js'),
  ]);
  return {
    initBackend: backend.initBackend,
    applyPlan: applyPlan.applyPlan,
    checkAll: applyPlan.checkAll,
    commitMessage: applyPlan.commitMessage,
    judges: applyPlan.judges,
    planWorkspace: applyPlan.planWorkspace,
    removeStrayFiles: applyPlan.removeStrayFiles,
    openEditor: registry.openEditor,
    readKeyStats: stats.readKeyStats,
    JudgingThreads: judging.JudgingThreads,
  };
}
