/**
 * Firecracker's API as its own OpenAPI (Swagger 2) schema says: every path, method and body
 * schema, for the stand-in VMM to serve and to refuse what the real one would.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import YAML from 'yaml';

export const SPEC_FILE = path.resolve(
  import.meta.dirname,
  '..',
  '..',
  'fixtures',
  'firecracker-api-v1.16.1.yaml',
);

export interface Route {
  path: string;
  re: RegExp;
  params: string[];
  method: string;
  validate?: ValidateFunction;
}

export function loadRoutes(file = SPEC_FILE): Route[] {
  const spec = YAML.parse(fs.readFileSync(file, 'utf8'));
  const ajv = new Ajv({ strict: false, allErrors: true });
  // Swagger 2 integer widths; JSON numbers carry them, so they only need to be known.
  for (const f of ['int32', 'int64']) ajv.addFormat(f, true);
  ajv.addSchema({ definitions: spec.definitions }, 'fc');
  const routes: Route[] = [];
  for (const [p, ops] of Object.entries<
    Record<string, { parameters?: { in: string; schema?: { $ref?: string } }[] }>
  >(spec.paths)) {
    const params: string[] = [];
    const re = new RegExp(
      `^${p.replace(/\{(\w+)\}/g, (_m, name) => {
        params.push(name);
        return '([^/]+)';
      })}$`,
    );
    for (const [method, op] of Object.entries(ops)) {
      const body = op.parameters?.find((x) => x.in === 'body')?.schema;
      const schema = body?.$ref ? { $ref: `fc${body.$ref}` } : body;
      routes.push({
        path: p,
        re,
        params,
        method: method.toUpperCase(),
        validate: schema ? ajv.compile(schema) : undefined,
      });
    }
  }
  return routes;
}

/** The route of a request and its checked body, or Firecracker's 400 with the reason. */
export function checkRequest(
  routes: Route[],
  method: string,
  url: string,
  raw: string,
): { route: Route; body: any } | { fault: string } {
  const route = routes.find((r) => r.method === method && r.re.test(url));
  if (!route) return { fault: `Invalid request method and/or path: ${method} ${url}` };
  let body: any;
  try {
    body = raw ? JSON.parse(raw) : undefined;
  } catch {
    return { fault: 'the body is not JSON' };
  }
  if (route.validate) {
    if (!route.validate(body))
      return {
        fault: `schema: ${route.validate.errors?.map((e) => `${e.instancePath} ${e.message}`).join('; ')}`,
      };
    // Firecracker requires a path id to equal the body's id.
    const m = route.re.exec(url)!;
    for (const [i, name] of route.params.entries())
      if ((body as Record<string, unknown>)[name] !== decodeURIComponent(m[i + 1]!))
        return { fault: `${name} in the path and body differ` };
  }
  return { route, body };
}
