/**
 * Terraform's approval prompt: type a value, Enter submits, only "yes" approves. Ctrl+C or Ctrl+D
 * answers no (the Ui runs ink with exitOnCtrlC off, so the command can say it cancelled).
 */
import { useRef, useState } from 'react';
import { Box, Text, useInput } from 'ink';

/** The prompt's two lines after a blank one, as Terraform asks; `cursor` while it is being answered. */
export function Question({ question, value, cursor }: { question: string; value: string; cursor: boolean }) {
  return (
    <Box flexDirection="column" marginTop={1}>
      <Text>
        <Text bold>{question}</Text> <Text dimColor>(only 'yes' is accepted)</Text>
      </Text>
      <Text>
        {'  '}Enter a value: {value}
        {cursor ? <Text inverse> </Text> : ''}
      </Text>
    </Box>
  );
}

export function Confirm({ question, onAnswer }: { question: string; onAnswer: (yes: boolean, typed: string) => void }) {
  const [value, setValue] = useState('');
  // A paste ("yes\r") arrives as one input: the buffer is read and written synchronously.
  const typed = useRef('');
  const answered = useRef(false);
  useInput((input, key) => {
    if (answered.current) return;
    const submit = (yes: boolean) => {
      answered.current = true;
      onAnswer(yes, typed.current);
    };
    if (key.ctrl && (input === 'c' || input === 'd')) return submit(false);
    if (key.return) return submit(typed.current === 'yes');
    if (key.backspace || key.delete) typed.current = typed.current.slice(0, -1);
    else {
      for (const ch of input) {
        if (ch === '\r' || ch === '\n') return submit(typed.current === 'yes');
        // Typed fast, "ye" and Ctrl+C can arrive as one chunk that ink does not parse as a key.
        if (ch === '\x03' || ch === '\x04') return submit(false);
        if (ch === '\x7f' || ch === '\b') typed.current = typed.current.slice(0, -1);
        else if (ch >= ' ') typed.current += ch;
      }
    }
    setValue(typed.current);
  });
  return <Question question={question} value={value} cursor />;
}
