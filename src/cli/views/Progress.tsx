/** One phase's progress on one line: "computing deltas ████████░░░░ 3/8 capitals/france". */
import { Text } from 'ink';

export interface ProgressProps {
  phase: string;
  done: number;
  total: number;
  detail?: string;
  /** Bar cells. */
  width?: number;
  /** Pad the phase name so several bars line up. */
  phaseWidth?: number;
}

export function Progress({ phase, done, total, detail, width = 24, phaseWidth = 0 }: ProgressProps) {
  const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1;
  const filled = Math.round(fraction * width);
  const finished = done >= total;
  // One line, truncated rather than wrapped: the live region keeps a stable height while it updates.
  return (
    <Text wrap="truncate-end">
      {phase.padEnd(phaseWidth)} <Text color={finished ? 'green' : 'cyan'}>{'█'.repeat(filled)}</Text>
      <Text dimColor>{'░'.repeat(width - filled)}</Text> {done}/{total}
      {detail ? <Text dimColor> {detail}</Text> : ''}
    </Text>
  );
}
