/** Prometheus text exposition format (version 0.0.4), written by hand: it is a few lines. */

export type MetricType = 'counter' | 'gauge';

export interface Metric {
  name: string;
  help: string;
  type: MetricType;
  samples: { labels?: Record<string, string>; value: number }[];
}

/** Turns an arbitrary key into a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*). */
export function metricName(key: string): string {
  const s = key.replace(/[^a-zA-Z0-9_:]/g, '_');
  return /^[a-zA-Z_:]/.test(s) ? s : `_${s}`;
}

function labelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function sampleValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Renders metrics; a metric with no samples still gets its HELP and TYPE lines. */
export function renderMetrics(metrics: Metric[]): string {
  const out: string[] = [];
  for (const m of metrics) {
    out.push(`# HELP ${m.name} ${m.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
    out.push(`# TYPE ${m.name} ${m.type}`);
    for (const s of m.samples) {
      const labels = Object.entries(s.labels ?? {});
      const l = labels.length ? `{${labels.map(([k, v]) => `${k}="${labelValue(v)}"`).join(',')}}` : '';
      out.push(`${m.name}${l} ${sampleValue(s.value)}`);
    }
  }
  return `${out.join('\n')}\n`;
}
