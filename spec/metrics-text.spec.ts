import { expect } from 'chai';
import { Histogram, MAX_TOPIC_LABELS, Metrics, TopicStats } from '../lib/metrics.js';
import { formatExposition } from '../lib/metrics-text.js';
import type { MetricFamily } from '../lib/metrics-text.js';
import { addrOf, useNodes } from './helpers/nodes.js';

interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Parsed {
  types: Map<string, string>;
  helps: Map<string, string>;
  series: Series[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * A strict reader of the text exposition format 0.0.4: every line is a HELP, a TYPE or a
 * sample; HELP and TYPE come once per family, before its samples; a sample belongs to the
 * family declared last (histograms: _bucket, _sum, _count); no series repeats; values parse.
 * Throws on the first violation, naming the line.
 */
function parseExposition(text: string): Parsed {
  if (!text.endsWith('\n')) throw new Error('the text must end with a newline');
  const types = new Map<string, string>();
  const helps = new Map<string, string>();
  const series: Series[] = [];
  const seen = new Set<string>();
  let current: string | undefined;
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`;
    let m: RegExpExecArray | null;
    if ((m = /^# HELP (\S+) (.*)$/.exec(line))) {
      const [, name, help] = m as unknown as [string, string, string];
      if (!NAME.test(name) || helps.has(name)) throw new Error(`bad or repeated HELP, ${where}`);
      if (!/^(?:[^\\]|\\[\\n])*$/.test(help)) throw new Error(`bad escape in HELP, ${where}`);
      helps.set(name, help);
      current = name;
      return;
    }
    if ((m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      const [, name, type] = m as unknown as [string, string, string];
      if (types.has(name) || name !== current) throw new Error(`TYPE must follow its HELP once, ${where}`);
      types.set(name, type);
      return;
    }
    if (line.startsWith('#')) throw new Error(`unexpected comment, ${where}`);
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample, ${where}`);
    const [, name, labelText, valueText] = m as unknown as [string, string, string | undefined, string];
    const labels: Record<string, string> = {};
    if (labelText !== undefined) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y;
      let pos = 0;
      while (pos < labelText.length) {
        re.lastIndex = pos;
        const l = re.exec(labelText);
        if (!l || !LABEL_NAME.test(l[1]!)) throw new Error(`bad labels, ${where}`);
        if (Object.hasOwn(labels, l[1]!)) throw new Error(`repeated label, ${where}`);
        labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
        pos = re.lastIndex;
        if (l[3] === '' && pos !== labelText.length) throw new Error(`bad labels, ${where}`);
      }
    }
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : valueText === 'NaN' ? NaN : Number(valueText);
    if (!/^[-+]?(\d+\.?\d*(e[-+]?\d+)?|\.\d+|Inf|NaN)$/i.test(valueText) || (Number.isNaN(value) && valueText !== 'NaN')) {
      throw new Error(`bad value, ${where}`);
    }
    if (current === undefined) throw new Error(`sample before any TYPE, ${where}`);
    const type = types.get(current);
    const allowed = type === 'histogram' ? [`${current}_bucket`, `${current}_sum`, `${current}_count`] : [current];
    if (!allowed.includes(name)) throw new Error(`sample outside its family ${current}, ${where}`);
    if (type === 'counter' && !current.endsWith('_total')) throw new Error(`counter not named *_total, ${where}`);
    if (type === 'counter' && !(value >= 0)) throw new Error(`negative counter, ${where}`);
    const key = `${name}{${Object.entries(labels).sort().map(([k, v]) => `${k}=${v}`).join(',')}}`;
    if (seen.has(key)) throw new Error(`repeated series, ${where}`);
    seen.add(key);
    series.push({ name, labels, value });
  });
  for (const name of helps.keys()) if (!types.has(name)) throw new Error(`HELP without TYPE: ${name}`);
  checkHistograms(types, series);
  return { types, helps, series };
}

/** Buckets ascending by le, cumulative counts non-decreasing, +Inf bucket equal to _count. */
function checkHistograms(types: Map<string, string>, series: Series[]): void {
  for (const [name, type] of types) {
    if (type !== 'histogram') continue;
    const groups = new Map<string, Series[]>();
    for (const s of series.filter((x) => x.name === `${name}_bucket`)) {
      const { le, ...rest } = s.labels;
      if (le === undefined) throw new Error(`${name}_bucket without le`);
      const key = JSON.stringify(rest);
      groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    for (const [key, buckets] of groups) {
      const les = buckets.map((b) => (b.labels.le === '+Inf' ? Infinity : Number(b.labels.le)));
      for (let i = 1; i < les.length; i++) {
        if (!(les[i]! > les[i - 1]!)) throw new Error(`${name}: le not ascending`);
        if (buckets[i]!.value < buckets[i - 1]!.value) throw new Error(`${name}: buckets not cumulative`);
      }
      if (les[les.length - 1] !== Infinity) throw new Error(`${name}: no +Inf bucket`);
      const count = series.find((s) => s.name === `${name}_count` && JSON.stringify(s.labels) === key);
      const sum = series.find((s) => s.name === `${name}_sum` && JSON.stringify(s.labels) === key);
      if (!count || !sum) throw new Error(`${name}${key}: _count or _sum missing`);
      if (count.value !== buckets[buckets.length - 1]!.value) throw new Error(`${name}${key}: +Inf bucket differs from _count`);
    }
  }
}

describe('metrics in the Prometheus text format', () => {
  describe('the strict reader used below', () => {
    const bad: Array<[string, string]> = [
      ['no trailing newline', '# HELP a_total x\n# TYPE a_total counter\na_total 1'],
      ['a sample outside its family', '# HELP a_total x\n# TYPE a_total counter\nb_total 1\n'],
      ['a counter not named _total', '# HELP a x\n# TYPE a counter\na 1\n'],
      ['a repeated series', '# HELP a_total x\n# TYPE a_total counter\na_total{k="v"} 1\na_total{k="v"} 2\n'],
      ['an unescaped quote', '# HELP a_total x\n# TYPE a_total counter\na_total{k="v"v"} 1\n'],
      ['a bad value', '# HELP g x\n# TYPE g gauge\ng one\n'],
      ['a histogram whose +Inf bucket differs from _count', '# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 2\n'],
      ['non-cumulative buckets', '# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'],
    ];
    for (const [what, text] of bad) {
      it(`refuses ${what}`, () => {
        expect(() => parseExposition(text)).to.throw();
      });
    }
  });

  describe('formatExposition', () => {
    it('writes HELP and TYPE once per family, escapes help and label values, and closes histograms with +Inf, _sum and _count', () => {
      const h = new Histogram([1, 2.5]);
      for (const v of [0.5, 2, 7]) h.observe(v);
      const families: MetricFamily[] = [
        { name: 'x_total', help: 'back\\slash and\nnewline', type: 'counter', samples: [{ labels: { topic: 'a"b\\c\nd' }, value: 3 }] },
        { name: 'g', help: 'a gauge', type: 'gauge', samples: [{ value: 0.25 }, { labels: { k: 'v' }, value: Infinity }] },
        { name: 'h', help: 'a histogram', type: 'histogram', histograms: [{ labels: { topic: 't' }, histogram: h }] },
      ];
      const text = formatExposition(families);
      expect(text.split('\n')).to.deep.equal([
        '# HELP x_total back\\\\slash and\\nnewline',
        '# TYPE x_total counter',
        'x_total{topic="a\\"b\\\\c\\nd"} 3',
        '# HELP g a gauge',
        '# TYPE g gauge',
        'g 0.25',
        'g{k="v"} +Inf',
        '# HELP h a histogram',
        '# TYPE h histogram',
        'h_bucket{topic="t",le="1"} 1',
        'h_bucket{topic="t",le="2.5"} 2',
        'h_bucket{topic="t",le="+Inf"} 3',
        'h_sum{topic="t"} 9.5',
        'h_count{topic="t"} 3',
        '',
      ]);
      const parsed = parseExposition(text);
      expect(parsed.series[0]!.labels.topic).to.equal('a"b\\c\nd');
    });
  });

  describe('TopicStats', () => {
    it(`keeps a label for the first ${MAX_TOPIC_LABELS} topics and sums the rest under "other"`, () => {
      const t = new TopicStats();
      for (let i = 0; i < MAX_TOPIC_LABELS + 10; i++) t.delivered(`topic-${i}`, 2);
      t.delivered('topic-0', undefined);
      const entries = t.entries();
      expect(entries).to.have.length(MAX_TOPIC_LABELS + 1);
      expect(entries[0]!.slice(0, 2)).to.deep.equal(['topic-0', 2]);
      expect(entries[0]![2].count, 'a direct delivery has no hop count').to.equal(1);
      expect(entries[MAX_TOPIC_LABELS]!.slice(0, 2)).to.deep.equal(['other', 10]);
    });
  });

  describe('P2PNetwork.metricsText()', () => {
    const nodes = useNodes({ heartbeatMs: 50 });

    it('passes the strict reader on a live node, with per-topic deliveries, hops and the direct ACK round trip', async () => {
      const a = await nodes.start();
      const b = await nodes.start({ bootstrap: [addrOf(a)] });
      const c = await nodes.start({ bootstrap: [addrOf(b)] });
      let got = 0;
      c.subscribe('blocks', () => void got++);
      c.subscribe('votes', () => void got++);
      await a.broadcast('blocks', { n: 1 });
      await a.broadcast('votes', { n: 2 });
      await a.sendToPeer(c.id, 'votes', { n: 3 });
      const t0 = Date.now();
      while (got < 3 && Date.now() - t0 < 5000) await new Promise((r) => setImmediate(r));
      expect(got).to.equal(3);

      const parsed = parseExposition(c.metricsText());
      const one = (name: string, labels: Record<string, string> = {}) =>
        parsed.series.find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
      expect(parsed.types.get('aethel_p2p_delivered_total')).to.equal('counter');
      expect(one('aethel_p2p_delivered_total', { topic: 'blocks' })).to.equal(1);
      expect(one('aethel_p2p_delivered_total', { topic: 'votes' })).to.equal(2);
      expect(parsed.types.get('aethel_p2p_delivery_hops')).to.equal('histogram');
      expect(one('aethel_p2p_delivery_hops_count', { topic: 'votes' }), 'the direct message has no hop count').to.equal(1);
      expect(one('aethel_p2p_delivery_hops_sum', { topic: 'blocks' })).to.be.at.least(1);
      expect(one('aethel_p2p_connected_peers')).to.equal(c.metrics().connectedPeers);
      expect(one('aethel_p2p_messages_received_total', { type: 'GOSSIP' })).to.be.at.least(2);

      const sender = parseExposition(a.metricsText());
      const ack = sender.series.find((s) => s.name === 'aethel_p2p_direct_ack_seconds_count');
      expect(ack?.value).to.equal(1);
    });

    it('lists every counter of the JSON snapshot', async () => {
      const a = await nodes.start();
      const text = a.metricsText();
      parseExposition(text);
      for (const name of ['messages_sent_total', 'messages_dropped_total', 'invalid_total', 'dial_failures_total', 'bytes_sent_total', 'bytes_received_total', 'gossip_sent_total', 'duplicates_received_total', 'seen_messages', 'known_peers', 'reachable_fraction']) {
        expect(text).to.include(`# TYPE aethel_p2p_${name} `);
      }
    });
  });

  describe('Metrics histograms', () => {
    it('fills the Prometheus buckets cumulatively, an observation on a bound counting in that bucket', () => {
      const h = new Histogram([1, 2]);
      h.observe(1);
      h.observe(1.5);
      h.observe(3);
      expect(h.cumulative()).to.deep.equal([1, 2, 3]);
      expect(h.sum).to.equal(5.5);
    });

    it('takes RTT observations in ms and keeps seconds', () => {
      const m = new Metrics();
      m.observeRtt(20);
      expect(m.peerRttSeconds.sum).to.equal(0.02);
    });
  });
});
