/** Request validation with a zod schema: the parsed value, or a 400 listing the issues. */
import type { z } from 'zod';
import { validationError } from './errors';

export function validate<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input);
  if (!r.success) throw validationError(r.error);
  return r.data;
}
