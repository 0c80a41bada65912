// SANA's Complex Human Instruction (CHI): the text put in front of every positive prompt before Gemma encodes it.
// ref: SANA.md §4.2
//
// Two dialects differ in line 1 only: NVlabs' configs wrap Enhanced prompt in double quotes, diffusers' pipelines
// in single quotes (different tokens, so different embeddings). The last line ends with one space, so the prompt
// follows "User Prompt: " directly.

export type PromptDialect = 'diffusers' | 'nvlabs';

const SHARED_LINES: readonly string[] = [
  '- If the prompt is simple, focus on adding specifics about colors, shapes, sizes, textures, and spatial relationships to create vivid and concrete scenes.',
  '- If the prompt is already detailed, refine and enhance the existing details slightly without overcomplicating.',
  'Here are examples of how to transform or refine prompts:',
  '- User Prompt: A cat sleeping -> Enhanced: A small, fluffy white cat curled up in a round shape, sleeping peacefully on a warm sunny windowsill, surrounded by pots of blooming red flowers.',
  '- User Prompt: A busy city street -> Enhanced: A bustling city street scene at dusk, featuring glowing street lamps, a diverse crowd of people in colorful clothing, and a double-decker bus passing by towering glass skyscrapers.',
  'Please generate only the enhanced description for the prompt below and avoid including any additional commentary or evaluations:',
  'User Prompt: ',
];

function firstLine(quote: string): string {
  return (
    `Given a user prompt, generate an ${quote}Enhanced prompt${quote} that provides detailed visual descriptions suitable for image generation. ` +
    'Evaluate the level of detail in the user prompt:'
  );
}

/** The 8 instruction lines of a dialect (diffusers: 'Enhanced prompt'; nvlabs: "Enhanced prompt"). */
export function complexHumanInstructionLines(dialect: PromptDialect): readonly string[] {
  return [firstLine(dialect === 'nvlabs' ? '"' : "'"), ...SHARED_LINES];
}

/** The instruction as the pipelines use it: its lines joined with "\n", no trailing newline. */
export function complexHumanInstruction(dialect: PromptDialect | readonly string[]): string {
  return (typeof dialect === 'string' ? complexHumanInstructionLines(dialect) : dialect).join('\n');
}
