// The request bodies the server accepts, declared once as JSON Schema (TypeBox), validated by Fastify's Ajv and
// typed from the same declaration. Limits come from the server's options, so an out-of-range size, step count or
// image count is a 400 that names the field. ref: docs/server.md

import { Static, Type } from '@sinclair/typebox';
import { LIMITS, Limit, MIN_SEQUENCE_LENGTH, MIN_SIZE } from '../limits.js';

export interface ServerLimits {
  /** Largest width or height. */
  maxSize: number;
  maxSteps: number;
  /** Most images per job (prompts x images per prompt). */
  maxImages: number;
  /** Longest prompt or negative prompt, in characters. */
  maxPromptLength: number;
  /** Most prompts in one native request. */
  maxPrompts: number;
}

export const DEFAULT_LIMITS: ServerLimits = { maxSize: 2048, maxSteps: 100, maxImages: 4, maxPromptLength: 4000, maxPrompts: 4 };

/** The hard limit (src/limits.ts) above which no server option may go: what the library itself accepts. */
const HARD: Record<keyof ServerLimits, [Limit, number]> = {
  maxSize: [LIMITS.size, MIN_SIZE],
  maxSteps: [LIMITS.steps, 1],
  maxImages: [LIMITS.images, 1],
  maxPromptLength: [LIMITS.promptChars, 1],
  maxPrompts: [LIMITS.prompts, 1],
};

/** The server's limits: its options over the defaults, each an integer within the library's own limit. */
export function resolveServerLimits(given: Partial<ServerLimits> = {}): ServerLimits {
  const out = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(HARD) as (keyof ServerLimits)[]) {
    const v = given[key];
    if (v === undefined) continue; // an option not given keeps its default (a spread would copy the undefined)
    const [limit, min] = HARD[key];
    if (!Number.isSafeInteger(v) || v < min || v > limit.max) {
      throw new Error(`server limit ${key} must be an integer from ${min} to ${limit.max} (${limit.why}), got ${v}`);
    }
    out[key] = v;
  }
  return out;
}

/** Seeds up to 2^64 - 1: JSON numbers lose precision above 2^53, so a decimal string is accepted too. */
const seedSchema = Type.Union([Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), Type.String({ pattern: '^[0-9]{1,20}$' })]);

/** A PNG file in base64, optionally as a data: URL. */
const pngSchema = Type.String({ minLength: 8, pattern: '^(data:image/png;base64,)?[A-Za-z0-9+/=\\s]+$' });

export function generateBodySchema(l: ServerLimits) {
  const text = Type.String({ maxLength: l.maxPromptLength });
  const size = Type.Integer({ minimum: 32, maximum: l.maxSize });
  return Type.Object(
    {
      prompt: Type.Union([Type.String({ minLength: 1, maxLength: l.maxPromptLength }), Type.Array(text, { minItems: 1, maxItems: l.maxPrompts })]),
      model: Type.Optional(Type.String({ maxLength: 200 })),
      negative: Type.Optional(text),
      steps: Type.Optional(Type.Integer({ minimum: 1, maximum: l.maxSteps })),
      guidance: Type.Optional(Type.Number({ minimum: 0, maximum: 50 })),
      seed: Type.Optional(seedSchema),
      width: Type.Optional(size),
      height: Type.Optional(size),
      noBinning: Type.Optional(Type.Boolean()),
      sampler: Type.Optional(Type.Union([Type.Literal('dpm'), Type.Literal('euler')])),
      flowShift: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 100 })),
      numImages: Type.Optional(Type.Integer({ minimum: 1, maximum: l.maxImages })),
      maxSequenceLength: Type.Optional(Type.Integer({ minimum: MIN_SEQUENCE_LENGTH, maximum: LIMITS.maxSequenceLength.max })),
      preview: Type.Optional(Type.Boolean()),
      // image-to-image, inpainting, ControlNet: PNG files as base64 (or data: URLs)
      image: Type.Optional(pngSchema),
      strength: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
      mask: Type.Optional(pngSchema),
      controlImage: Type.Optional(pngSchema),
      controlScale: Type.Optional(Type.Number({ minimum: -10, maximum: 10 })),
      pagScale: Type.Optional(Type.Number({ minimum: 0, maximum: 50 })),
      pagLayers: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { minItems: 1, maxItems: 64 })),
      pagAdaptiveScale: Type.Optional(Type.Number({ minimum: 0, maximum: 10 })),
      maxTimesteps: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1.5708 })),
      intermediateTimesteps: Type.Optional(Type.Union([Type.Number({ exclusiveMinimum: 0, maximum: 1.5708 }), Type.Null()])),
    },
    { additionalProperties: false },
  );
}
export type GenerateBody = Static<ReturnType<typeof generateBodySchema>>;

export function openAiGenerationSchema(l: ServerLimits) {
  return Type.Object(
    {
      prompt: Type.String({ minLength: 1, maxLength: l.maxPromptLength }),
      model: Type.Optional(Type.String({ maxLength: 200 })),
      n: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: l.maxImages }), Type.Null()])),
      size: Type.Optional(Type.Union([Type.String({ pattern: '^(auto|[0-9]{1,5}x[0-9]{1,5})$' }), Type.Null()])),
      response_format: Type.Optional(Type.Union([Type.Literal('b64_json'), Type.Literal('url'), Type.Null()])),
      output_format: Type.Optional(Type.Union([Type.Literal('png'), Type.Null()])),
      // Accepted for compatibility with clients that always send them; they do not change the image.
      quality: Type.Optional(Type.Union([Type.String({ maxLength: 20 }), Type.Null()])),
      style: Type.Optional(Type.Union([Type.String({ maxLength: 20 }), Type.Null()])),
      user: Type.Optional(Type.String({ maxLength: 200 })),
      seed: Type.Optional(seedSchema),
    },
    { additionalProperties: false },
  );
}
export type OpenAiGenerationBody = Static<ReturnType<typeof openAiGenerationSchema>>;

export const jobParamsSchema = Type.Object({ id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) }, { additionalProperties: false });
export const imageParamsSchema = Type.Object(
  { id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }), k: Type.String({ pattern: '^[0-9]{1,4}$' }) },
  { additionalProperties: false },
);
export type JobParams = Static<typeof jobParamsSchema>;
export type ImageParams = Static<typeof imageParamsSchema>;
