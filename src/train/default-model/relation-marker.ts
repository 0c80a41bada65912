// Which tokens the default model's text encoder marks (text-encoder/tiny-gemma.ts, option markedTokens): the
// relation words of the captions ("left", "right", "above", "over", "below", "under", "beneath"), with every other
// caption word and the instruction's last words before the prompt held at zero boost. Only these need to be exact:
// they are what the marker head sees in every training caption and held-out prompt. ref: SANA.md §4.5
import { complexHumanInstruction } from '../../text/complex-human-instruction.js';
import { GemmaTokenizer } from '../../text/tokenizer.js';
import type { MarkedTokens } from '../text-encoder/tiny-gemma.js';
import { CAPTION_VOCABULARY, RELATION_WORDS } from '../shapes/caption.js';

/** The marker's logit boost: ~0.97 of the head on a relation word 3-5 tokens back, ~1% on the instruction's "below" 12+ back. */
export const RELATION_MARKER_LOGIT = 8;

/** Instruction tokens before the prompt held at zero boost: the ones within the marker head's reach of the caption. */
const INSTRUCTION_TAIL_TOKENS = 20;

/** The tokens to mark and to hold at zero, as ids of the tokenizer the encoder is written for. */
export function relationMarkerTokens(tokenizer: GemmaTokenizer, logit = RELATION_MARKER_LOGIT): MarkedTokens {
  // a caption word follows a space (the instruction ends with "User Prompt: "), so its pieces are "▁word" ones
  const idsOf = (word: string) => tokenizer.textIds(word === ',' ? 'a,' : ` ${word}`).slice(word === ',' ? -1 : 0);
  const marked = [...new Set(RELATION_WORDS.flatMap(idsOf))];
  const tail = tokenizer.textIds(`${complexHumanInstruction('diffusers')} `).slice(-INSTRUCTION_TAIL_TOKENS);
  const unmarked = [...new Set([...CAPTION_VOCABULARY.filter((w) => !RELATION_WORDS.includes(w)).flatMap(idsOf), ...tail])].filter(
    (id) => !marked.includes(id),
  );
  return { marked, unmarked, logit };
}
