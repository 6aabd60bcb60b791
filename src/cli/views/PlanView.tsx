/** The plan as a table, rendered from the same rows and summary as the plain text and `--json`. */
import { Box, Text } from 'ink';
import { Action, type Plan } from '../../plan/plan.js';
import { planRows, solveLines, summaryLine } from '../../plan/render.js';

type Glyph = Exclude<Action, Action.NoOp> | '!' | '?';

const GLYPH_STYLE: Record<Glyph, { color: string; bold?: boolean }> = {
  [Action.Create]: { color: 'green' },
  [Action.Update]: { color: 'yellow' },
  [Action.Destroy]: { color: 'red' },
  [Action.Satisfied]: { color: 'cyan' },
  '!': { color: 'magenta', bold: true },
  '?': { color: 'gray' },
};

export function PlanView({ plan }: { plan: Plan }) {
  const rows = planRows(plan);
  const idWidth = Math.max(0, ...rows.map((r) => r.id.length));
  const verbWidth = Math.max(0, ...rows.map((r) => r.verb.length));
  return (
    <Box flexDirection="column">
      <Text>
        Model <Text bold>{plan.model}</Text> (state serial {plan.state.serial})
        {plan.checkedSatisfied ? '' : <Text dimColor> — structural plan: assertions not run</Text>}
      </Text>
      {rows.length > 0 && (
        <Box flexDirection="column" marginTop={1}>
          {rows.map((r, i) => {
            const style = GLYPH_STYLE[r.symbol as Glyph] ?? { color: 'white' };
            return (
              <Box key={`${i}:${r.id}`}>
                {/* Fixed columns; a long detail wraps inside its own column. */}
                <Box width={4} flexShrink={0} paddingLeft={2}>
                  <Text color={style.color} bold={style.bold}>{r.symbol}</Text>
                </Box>
                <Box width={idWidth + 2} flexShrink={0}>
                  <Text>{r.id}</Text>
                </Box>
                <Box width={verbWidth + 2} flexShrink={0}>
                  <Text>{r.verb}</Text>
                </Box>
                <Text dimColor>{r.detail}</Text>
              </Box>
            );
          })}
        </Box>
      )}
      {solveLines(plan).length > 0 && (
        <Box flexDirection="column" marginTop={1}>
          {solveLines(plan).map((l, i) => (
            <Text key={i} color={l.startsWith('Warning') ? 'yellow' : undefined} dimColor={!l.startsWith('Warning')}>
              {l}
            </Text>
          ))}
        </Box>
      )}
      <Box marginTop={1}>
        <Text bold>{summaryLine(plan)}</Text>
      </Box>
    </Box>
  );
}
