import { parser } from '@prometheus-io/lezer-promql';

/**
 * The metric names a PromQL query reads: the name of each vector selector, as Prometheus's own
 * grammar (the one its web UI parses queries with) finds it, so function names, label names and
 * keywords are never mistaken for one. Throws where it cannot tell: a query that does not parse, or
 * a selector that names its metric only through matchers (`{__name__=~"..."}`).
 */
export function metricNames(query: string): string[] {
  const names = new Set<string>();
  parser.parse(query).iterate({
    enter(node) {
      if (node.type.isError) throw new Error(`not PromQL at character ${node.from}: ${query}`);
      if (node.name !== 'VectorSelector') return;
      const name = node.node.getChild('Identifier');
      if (!name) throw new Error(`a selector without a metric name: ${query.slice(node.from, node.to)}`);
      names.add(query.slice(name.from, name.to));
    },
  });
  return [...names].sort();
}
