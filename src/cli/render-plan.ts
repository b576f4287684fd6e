import type { Plan } from '../planner/plan-types.js';
import { formatBytes } from '../util/format-bytes.js';

/** The plan as lines a person reads (`-n`, and before a real run with `-v`). */
export function renderPlan(plan: Plan, isDryRun: boolean): string[] {
  const lines: string[] = [];
  const approx = (exact: boolean): string => (exact ? '' : '~');
  for (const step of plan.steps) {
    if (step.kind === 'send') {
      const how = step.parent ? `incremental from ${step.parent.name}` : 'full';
      // The planner's reason starts with how it sends ("incremental from X (already at
      // destination), vs full 1 GiB"): printed once, not as a column and again in the reason.
      const why = step.reason.startsWith(how) ? step.reason : `${how}  (${step.reason})`;
      lines.push(`${isDryRun ? 'would send' : 'send'} ${step.snapshot.name}  ${approx(step.exact)}${formatBytes(step.bytes)}  ${why}`);
    } else {
      lines.push(`${isDryRun ? 'would delete' : 'delete'} ${step.snapshot.name}  (${step.reason})`);
    }
  }
  for (const kept of plan.keptForDependents ?? []) {
    const why = plan.retention ? '' : 'not in source, but ';
    lines.push(`keep ${kept.name}  (${why}diffs stored in the destination start from it)`);
  }
  for (const { snapshot, reason } of plan.retention?.kept ?? []) lines.push(`keep ${snapshot.name}  (${reason})`);
  for (const { snapshot, reason } of plan.retention?.skipped ?? []) {
    lines.push(`${isDryRun ? 'would skip' : 'skip'} ${snapshot.name}  (${reason}: not sent)`);
  }
  const sends = plan.steps.filter((s) => s.kind === 'send').length;
  const deletes = plan.steps.length - sends;
  lines.push(
    `${sends} to send (${approx(plan.isExact)}${formatBytes(plan.totalBytes)}), ${deletes} to delete, ${plan.alreadyPresent.length} already there`,
  );
  return lines;
}

/** The plan for scripts (`--json -n`). Stable field names; sizes in bytes. */
export function planToJson(plan: Plan): unknown {
  return {
    createdAt: plan.createdAt.toISOString(),
    totalBytes: plan.totalBytes,
    isExact: plan.isExact,
    alreadyPresent: plan.alreadyPresent.map((s) => s.name),
    keptForDependents: (plan.keptForDependents ?? []).map((s) => s.name),
    ...(plan.retention && {
      retention: {
        kept: plan.retention.kept.map(({ snapshot, reason }) => ({ snapshot: snapshot.name, reason })),
        skipped: plan.retention.skipped.map(({ snapshot, reason }) => ({ snapshot: snapshot.name, reason })),
      },
    }),
    steps: plan.steps.map((step) =>
      step.kind === 'send'
        ? {
            kind: 'send',
            snapshot: step.snapshot.name,
            uuid: step.snapshot.uuid,
            parent: step.parent?.name ?? null,
            bytes: step.bytes,
            exact: step.exact,
            reason: step.reason,
          }
        : { kind: 'delete', snapshot: step.snapshot.name, uuid: step.snapshot.uuid, reason: step.reason },
    ),
  };
}
