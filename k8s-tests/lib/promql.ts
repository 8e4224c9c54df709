/**
 * Just enough PromQL to check what the chart's queries compute: instant-vector selectors with
 * label matchers, the aggregations sum/max/min/avg/count with `by`/`without`, and a comparison as a
 * filter, with a number or between two vectors (one-to-one on identical label sets, as
 * Prometheus matches without `on`/`ignoring`). NaN behaves as in Prometheus: it compares false
 * except with `!=` (so `x != x` keeps exactly the NaN samples), max and min skip it unless every
 * value in the group is NaN, sum and avg propagate it. Anything else (rate, ranges, arithmetic,
 * `bool`, `on`) throws, so a test never silently evaluates a query it does not understand. Also
 * lists the metric names a query reads, for any PromQL.
 */

export type Labels = Record<string, string>;
export interface Sample {
  labels: Labels;
  value: number;
}

const AGGREGATIONS = ['sum', 'max', 'min', 'avg', 'count'] as const;
type Aggregation = (typeof AGGREGATIONS)[number];

type Token = { kind: 'ident' | 'string' | 'number' | 'op'; text: string };

function tokenize(query: string): Token[] {
  const tokens: Token[] = [];
  const pattern =
    /\s*(?:(?<string>"(?:[^"\\]|\\.)*")|(?<number>\d+(?:\.\d+)?(?:e[+-]?\d+)?)|(?<ident>[A-Za-z_:][A-Za-z0-9_:]*)|(?<op>=~|!~|!=|>=|<=|==|[{}(),=<>[\]*/+-]))/y;
  let rest = query.trim();
  while (rest.length > 0) {
    pattern.lastIndex = 0;
    const match = pattern.exec(rest);
    if (!match?.groups) throw new Error(`cannot read PromQL at: ${rest}`);
    const [kind, text] = Object.entries(match.groups).find(([, value]) => value !== undefined)!;
    tokens.push({ kind: kind as Token['kind'], text: text! });
    rest = rest.slice(match[0].length).trimStart();
  }
  return tokens;
}

type Node =
  | { type: 'selector'; name: string; matchers: [string, string, string][] }
  | { type: 'aggregate'; op: Aggregation; grouping?: { without: boolean; labels: string[] }; inner: Node }
  | { type: 'compare'; op: string; left: Node; right: Node | number };

/** Modifiers this evaluator does not implement; read as a selector they would evaluate wrongly. */
const UNSUPPORTED_WORDS = new Set([
  'bool',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
]);

function parse(query: string): Node {
  const tokens = tokenize(query);
  let at = 0;
  const peek = (): Token | undefined => tokens[at];
  const next = (): Token => {
    const token = tokens[at++];
    if (!token) throw new Error(`unexpected end of PromQL: ${query}`);
    return token;
  };
  const expect = (text: string): void => {
    const token = next();
    if (token.text !== text) throw new Error(`expected ${text}, got ${token.text} in: ${query}`);
  };
  const labelList = (): string[] => {
    expect('(');
    const labels: string[] = [];
    while (peek()?.text !== ')') {
      labels.push(next().text);
      if (peek()?.text === ',') next();
    }
    expect(')');
    return labels;
  };
  const grouping = (): { without: boolean; labels: string[] } | undefined => {
    const word = peek()?.text;
    if (word !== 'by' && word !== 'without') return undefined;
    next();
    return { without: word === 'without', labels: labelList() };
  };
  const operand = (): Node => {
    const token = next();
    if (token.kind !== 'ident') throw new Error(`unsupported PromQL at ${token.text} in: ${query}`);
    if (UNSUPPORTED_WORDS.has(token.text)) throw new Error(`unsupported PromQL ${token.text} in: ${query}`);
    if ((AGGREGATIONS as readonly string[]).includes(token.text)) {
      let group = grouping();
      expect('(');
      const inner = expression();
      expect(')');
      group ??= grouping();
      return { type: 'aggregate', op: token.text as Aggregation, grouping: group, inner };
    }
    if (peek()?.text === '(') throw new Error(`unsupported PromQL function ${token.text} in: ${query}`);
    const matchers: [string, string, string][] = [];
    if (peek()?.text === '{') {
      next();
      while (peek()?.text !== '}') {
        const label = next().text;
        const op = next().text;
        const value = next();
        if (value.kind !== 'string') throw new Error(`expected a string in: ${query}`);
        matchers.push([label, op, JSON.parse(value.text) as string]);
        if (peek()?.text === ',') next();
      }
      next();
    }
    if (peek()?.text === '[') throw new Error(`range vectors are not supported: ${query}`);
    return { type: 'selector', name: token.text, matchers };
  };
  const expression = (): Node => {
    const left = operand();
    const op = peek()?.text;
    if (op && ['>', '<', '>=', '<=', '==', '!='].includes(op)) {
      next();
      if (peek()?.kind === 'number') return { type: 'compare', op, left, right: Number(next().text) };
      return { type: 'compare', op, left, right: operand() };
    }
    return left;
  };
  const tree = expression();
  if (at !== tokens.length) throw new Error(`unsupported PromQL after ${tokens[at - 1]!.text}: ${query}`);
  return tree;
}

function matches(labels: Labels, [label, op, value]: [string, string, string]): boolean {
  const actual = labels[label] ?? '';
  const regex = (): boolean => new RegExp(`^(?:${value})$`).test(actual);
  if (op === '=') return actual === value;
  if (op === '!=') return actual !== value;
  if (op === '=~') return regex();
  if (op === '!~') return !regex();
  throw new Error(`unknown matcher ${op}`);
}

function compare(op: string, a: number, b: number): boolean {
  return { '>': a > b, '<': a < b, '>=': a >= b, '<=': a <= b, '==': a === b, '!=': a !== b }[op]!;
}

function signature(labels: Labels): string {
  const kept = Object.entries(labels).filter(([key]) => key !== '__name__');
  return JSON.stringify(kept.sort(([a], [b]) => a.localeCompare(b)));
}

function bySignature(samples: Sample[]): Map<string, Sample> {
  const map = new Map<string, Sample>();
  for (const sample of samples) {
    const key = signature(sample.labels);
    if (map.has(key)) throw new Error(`duplicate series for the match group ${key}`);
    map.set(key, sample);
  }
  return map;
}

/** Prometheus's max and min: a NaN loses to any number, so the result is NaN only if all are. */
function withoutNaN(values: number[], pick: (...values: number[]) => number): number {
  const numbers = values.filter((value) => !Number.isNaN(value));
  return numbers.length > 0 ? pick(...numbers) : Number.NaN;
}

function evaluateNode(node: Node, series: Sample[]): Sample[] {
  if (node.type === 'selector') {
    return series
      .filter((s) => s.labels['__name__'] === node.name && node.matchers.every((m) => matches(s.labels, m)))
      .map((s) => ({ labels: s.labels, value: s.value }));
  }
  if (node.type === 'compare') {
    const left = evaluateNode(node.left, series);
    const { right } = node;
    if (typeof right === 'number') return left.filter((s) => compare(node.op, s.value, right));
    // Vector to vector: each left sample meets the right sample with the same labels (the metric
    // name aside); a duplicate on either side is an error in Prometheus, so it is one here too.
    const rightBySignature = bySignature(evaluateNode(right, series));
    bySignature(left);
    return left.filter((s) => {
      const match = rightBySignature.get(signature(s.labels));
      return match !== undefined && compare(node.op, s.value, match.value);
    });
  }
  const groups = new Map<string, { labels: Labels; values: number[] }>();
  for (const sample of evaluateNode(node.inner, series)) {
    const kept = Object.entries(sample.labels).filter(([key]) => {
      if (key === '__name__') return false;
      if (!node.grouping) return false;
      return node.grouping.without ? !node.grouping.labels.includes(key) : node.grouping.labels.includes(key);
    });
    const labels = Object.fromEntries(kept.sort(([a], [b]) => a.localeCompare(b)));
    const key = JSON.stringify(labels);
    const group = groups.get(key) ?? { labels, values: [] };
    group.values.push(sample.value);
    groups.set(key, group);
  }
  return [...groups.values()].map(({ labels, values }) => {
    const value = {
      sum: () => values.reduce((a, b) => a + b, 0),
      max: () => withoutNaN(values, Math.max),
      min: () => withoutNaN(values, Math.min),
      avg: () => values.reduce((a, b) => a + b, 0) / values.length,
      count: () => values.length,
    }[node.op]();
    return { labels, value };
  });
}

/**
 * Evaluates an instant query over the given series (each with a `__name__` label), and returns the
 * result sorted by its labels.
 */
export function evaluate(query: string, series: Sample[]): Sample[] {
  return evaluateNode(parse(query), series).sort((a, b) =>
    JSON.stringify(a.labels).localeCompare(JSON.stringify(b.labels)),
  );
}

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL query reads: identifiers that are neither functions, aggregations,
 * keywords, label names (inside `{}` or a `by (...)` list) nor durations. Works on any PromQL
 * (rate, histogram_quantile, arithmetic), not only on what `evaluate` understands.
 */
export function metricNames(query: string): string[] {
  const withoutStrings = query.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const withoutMatchers = withoutStrings.replace(/\{[^}]*\}/g, '{}').replace(/\[[^\]]*\]/g, '[]');
  const withoutGroupings = withoutMatchers.replace(
    /\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g,
    ' ',
  );
  const names = new Set<string>();
  for (const match of withoutGroupings.matchAll(/(?<![\w:.$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)) {
    const [, name, call] = match;
    if (call || KEYWORDS.has(name!.toLowerCase())) continue;
    names.add(name!);
  }
  return [...names].sort();
}
