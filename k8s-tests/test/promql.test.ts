/**
 * The PromQL evaluator the chart's query tests rely on: it must agree with Prometheus where the
 * chart's queries need it, NaN included, and refuse what it does not implement.
 */
import { describe, expect, it } from 'vitest';
import { evaluate, type Sample } from '../lib/promql.js';

const lag = (pod: string, value: number, namespace = 'parley'): Sample => ({
  labels: { __name__: 'lag', namespace, pod },
  value,
});

describe('the PromQL evaluator', () => {
  it('max and min skip NaN unless every value of the group is NaN, as in Prometheus', () => {
    const series = [lag('a', Number.NaN), lag('b', 3), lag('c', 7)];
    expect(evaluate('max(lag)', series)).toEqual([{ labels: {}, value: 7 }]);
    expect(evaluate('min(lag)', series)).toEqual([{ labels: {}, value: 3 }]);
    const allNaN = [lag('a', Number.NaN), lag('b', Number.NaN)];
    expect(evaluate('max(lag)', allNaN)[0]!.value).toBeNaN();
    expect(evaluate('min(lag)', allNaN)[0]!.value).toBeNaN();
  });

  it('sum and avg propagate NaN; count counts NaN samples', () => {
    const series = [lag('a', Number.NaN), lag('b', 3)];
    expect(evaluate('sum(lag)', series)[0]!.value).toBeNaN();
    expect(evaluate('avg(lag)', series)[0]!.value).toBeNaN();
    expect(evaluate('count(lag)', series)).toEqual([{ labels: {}, value: 2 }]);
  });

  it('NaN compares false with a number, also with ==', () => {
    const series = [lag('a', Number.NaN)];
    for (const op of ['>', '<', '>=', '<=', '==']) expect(evaluate(`lag ${op} 0`, series), op).toEqual([]);
    expect(evaluate('lag != 0', series)).toHaveLength(1);
  });

  it('compares two vectors one-to-one on their labels: x != x keeps exactly the NaN samples', () => {
    const series = [lag('a', Number.NaN), lag('b', 3)];
    const kept = evaluate('lag != lag', series);
    expect(kept.map((s) => s.labels['pod'])).toEqual(['a']);
    expect(kept[0]!.value).toBeNaN();
    expect(evaluate('lag == lag', series).map((s) => s.labels['pod'])).toEqual(['b']);
    expect(evaluate('max(lag) != max(lag)', series)).toEqual([]);
    expect(evaluate('max(lag) != max(lag)', [lag('a', Number.NaN), lag('b', Number.NaN)])).toHaveLength(1);
    expect(evaluate('max(lag) != max(lag)', [])).toEqual([]);
  });

  it('a vector comparison keeps only samples with a match on the other side, the metric name aside', () => {
    const series = [
      lag('a', 5),
      lag('b', 5),
      { labels: { __name__: 'limit', namespace: 'parley', pod: 'a' }, value: 4 },
    ];
    expect(evaluate('lag > limit', series)).toEqual([lag('a', 5)]);
    expect(evaluate('max by (pod) (lag) > max by (pod) (limit)', series)).toEqual([
      { labels: { pod: 'a' }, value: 5 },
    ]);
  });

  it('refuses a duplicate match group and what it does not implement', () => {
    const series = [lag('a', 1), lag('b', 2)];
    // Two series with one label set: which of them should meet the other side is undefined.
    expect(() => evaluate('lag != lag', [lag('a', 1), lag('a', 2)])).toThrow(/duplicate/);
    expect(() => evaluate('lag > bool 1', series)).toThrow(/bool/);
    expect(() => evaluate('lag != on (pod) lag', series)).toThrow(/on/);
    expect(() => evaluate('lag and lag', series)).toThrow();
    expect(() => evaluate('rate(lag[5m]) > 1', series)).toThrow();
  });
});
