"""report.html: one self-contained file (inline CSS and SVG, no script, no font, no request).

Rendered with jinja2 and autoescape on: every string from data is escaped; the only raw
markup is the SVG matplotlib wrote (which escapes its own text). A Content-Security-Policy
forbids the page any request, so even a URL inside the data cannot make it call out.
"""

from __future__ import annotations

from jinja2 import Environment
from markupsafe import Markup

from ragortune import __version__
from ragortune.io import utc_now
from ragortune.report import format as fmt
from ragortune.report.charts import accuracy_chart, cost_chart
from ragortune.report.model import OPTION_NAMES, ReportModel

_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>ragortune report{% if scenario %}: {{ scenario }}{% endif %}</title>
<style>
:root { --ink: #1d2430; --muted: #5b6472; --line: #d9dee5; --good: #1a7f37; --bad: #b42318;
        --accent: #1f5fbf; --bg-soft: #f5f7fa; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; color: var(--ink); margin: 0 auto; max-width: 1120px; padding: 24px; }
h1 { font-size: 1.5em; margin: 0 0 4px; }
h2 { font-size: 1.2em; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 1em; margin: 18px 0 6px; }
.sub, .note { color: var(--muted); font-size: 0.9em; }
.verdict { background: var(--bg-soft); border-left: 6px solid var(--accent); padding: 14px 18px;
           margin: 16px 0; border-radius: 4px; }
.verdict .pick { font-size: 1.45em; font-weight: 700; }
.verdict .conf { font-size: 1.05em; margin-left: 8px; color: var(--muted); }
ol.reasons { padding-left: 1.4em; margin: 8px 0; }
ol.reasons li { margin: 4px 0; }
.num { font-variant-numeric: tabular-nums; font-weight: 600; white-space: nowrap; }
.tag { font-size: 0.78em; padding: 1px 6px; border-radius: 8px; border: 1px solid var(--line);
       color: var(--muted); margin-right: 4px; }
.for { color: var(--good); border-color: var(--good); }
.against { color: var(--bad); border-color: var(--bad); }
.warn { color: var(--bad); }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 0.9em; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left;
         vertical-align: top; }
th { background: var(--bg-soft); font-weight: 600; }
td.r, th.r { text-align: right; font-variant-numeric: tabular-nums; }
td.missing { color: var(--muted); font-style: italic; }
.right { color: var(--good); } .wrong { color: var(--bad); }
.wrap { overflow-x: auto; }
svg.chart { width: 100%; height: auto; max-width: 960px; display: block; }
.cols { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 16px; }
.kv td:first-child { color: var(--muted); width: 40%; word-break: break-all; }
.kv td { word-break: break-word; }
footer { margin-top: 40px; color: var(--muted); font-size: 0.85em; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  h2 { break-after: avoid; }
  section, table, svg.chart, .verdict { break-inside: avoid; }
  .wrap { overflow: visible; }
  a { color: inherit; text-decoration: none; }
  @page { margin: 14mm; }
}
</style>
</head>
<body>
<header>
<h1>ragortune report{% if scenario %}: {{ scenario }}{% endif %}</h1>
<div class="sub">Built from {{ m.folder }} on {{ built_at }} by ragortune {{ version }}.
{% if m.synthesised %}The questions were synthesised from the documents (`ragortune synth`), not written by people.{% endif %}
{% if missing %}Not in the folder: {{ missing | join(", ") }}.{% endif %}</div>
</header>

<section id="verdict">
{% if v %}
<div class="verdict">
  <div><span class="pick">Recommendation: {{ v.label }}</span>
  {% if v.confidence %}<span class="conf">confidence: {{ v.confidence }}</span>{% endif %}</div>
  {% if v.too_close %}<div class="warn"><strong>Too close to call.</strong>{% if v.settled_by %} {{ v.settled_by }}{% endif %}</div>{% endif %}
  {% if v.runner_up and v.premium is not none %}<div class="note">Against the runner-up, {{ names.get(v.runner_up, v.runner_up) }}:
    {{ "saves" if v.premium < 0 else "costs" }} <span class="num">{{ fmt.money(v.premium | abs) }}</span> over the horizon.</div>{% endif %}
  {% if v.revisit %}<div><strong>Revisit:</strong> {{ v.revisit }}</div>{% endif %}
  {% if v.win_share %}<div class="note">Win share over the Monte Carlo draws:
    {% for opt, s in v.win_share.items() %}{{ names.get(opt, opt) }} {{ fmt.share(s) }}{% if not loop.last %}, {% endif %}{% endfor %}</div>{% endif %}
  {% if v.first_step %}<div><strong>First:</strong> {{ v.first_step }}</div>{% endif %}
  <h3>Reasons, ranked by what decides</h3>
  <ol class="reasons">
  {% for r in v.reasons %}<li><span class="tag {{ r.side }}">{{ r.side }}</span>{% if r.decisive %}<span class="tag">decisive</span>{% endif %}
    {% set n = fmt.reason_number(r.value, r.dollars) %}{% if n %}<span class="num" title="{{ r.rule or '' }}">{% if r.rule %}<span class="note">{{ r.rule }}</span> {% endif %}{{ n }}</span> &middot; {% endif %}{{ r.text }}</li>
  {% else %}<li class="missing">no reasons recorded</li>{% endfor %}
  </ol>
  {% if v.flips %}<h3>What would flip it</h3><ul>{% for f in v.flips %}<li>{{ f }}</li>{% endfor %}</ul>{% endif %}
  {% if v.warnings %}<h3 class="warn">Warnings</h3><ul>{% for w in v.warnings %}<li class="warn">{{ w }}</li>{% endfor %}</ul>{% endif %}
</div>
{% else %}
<div class="verdict"><span class="pick">No decision in this folder</span>
<div class="note">decision.json is missing: run <code>ragortune decide --json</code> (or <code>ragortune compare</code>).</div></div>
{% endif %}
</section>

<section id="arms">
<h2>The arms, measured</h2>
{% if m.training_protocol %}<p>Fine-tuned arms: {{ m.training_protocol }}.</p>{% endif %}
{% if m.arms %}
<div class="wrap"><table>
<tr><th>arm</th><th class="r">accuracy (unseen) [95%]</th><th class="r">unseen phrasings of trained facts</th>
<th class="r">unseen facts</th><th class="r">accuracy (seen)</th>
<th class="r">abstention precision / recall</th><th class="r">stale after update</th>
<th class="r">new facts right</th><th class="r">latency p50 / p95</th>
<th class="r">tokens/query (prompt + completion)</th><th class="r">cost per correct answer</th></tr>
{% for a in m.arms %}<tr><th>{{ a.name }}</th>
<td class="r">{{ fmt.measure(a.accuracy) }}</td>
<td class="r">{{ fmt.measure(a.accuracy_unseen_phrasing) }}</td>
<td class="r">{{ fmt.measure(a.accuracy_unseen_fact) }}</td>
<td class="r">{{ fmt.measure(a.accuracy_seen) }}</td>
<td class="r">{{ fmt.measure(a.abstention_precision) }} / {{ fmt.measure(a.abstention_recall) }}</td>
<td class="r">{{ fmt.measure(a.stale_rate) }}</td>
<td class="r">{{ fmt.measure(a.new_fact_accuracy) }}</td>
<td class="r">{% if a.latency_p50_ms is none %}{{ fmt.NOT_MEASURED }}{% else %}{{ fmt.number(a.latency_p50_ms) }} / {{ fmt.number(a.latency_p95_ms) }} ms{% endif %}</td>
<td class="r">{% if a.prompt_tokens is none %}{{ fmt.NOT_MEASURED }}{% else %}{{ fmt.number(a.prompt_tokens) }} + {{ fmt.number(a.completion_tokens) }}{% endif %}</td>
<td class="r">{{ fmt.money(a.cost_per_correct) if a.cost_per_correct is not none else ("no cost option" if a.name == "base" else fmt.NOT_MEASURED) }}</td></tr>
{% endfor %}</table></div>
<p class="note">Accuracy counts answerable questions; [low, high] is a 95% interval{% if wilson %} (Wilson, computed by the report from the
recorded n where the evidence gave none){% endif %}. Overlapping intervals mean the difference is not shown at this n.
Cost per correct answer = the option's total cost over the horizon / (queries over the horizon &times; accuracy),
at the scenario's prices and volume (rag &rarr; RAG, ft &rarr; fine-tuned API, hybrid &rarr; hybrid).</p>
{% if subsets %}<p class="note">{{ fmt.SUBSET_NOTE }}</p>{% endif %}
{% if acc_svg %}{{ acc_svg }}{% endif %}
{% if m.paired_tests %}<h3>Paired tests</h3>
<p class="note">Exact McNemar on the questions both arms were scored on, Holm-adjusted over the pairs of each group.</p>
<div class="wrap"><table><tr><th>questions</th><th>pair</th><th class="r">n</th><th class="r">difference [95%]</th><th class="r">p (Holm)</th><th>verdict</th></tr>
{% for t in m.paired_tests %}<tr><td>{{ t.subset }}</td><td>{{ t.a }} vs {{ t.b }}</td><td class="r">{{ fmt.number(t.n) }}</td>
<td class="r">{{ fmt.difference(t) }}</td><td class="r">{{ fmt.p_value(t.p_holm) }}</td>
<td>{% if t.significant %}<strong>{{ t.verdict }}</strong>{% else %}{{ t.verdict }}{% endif %}</td></tr>
{% endfor %}</table></div>{% endif %}
{% else %}<p class="missing">Answers not measured: evidence.json has no arms.</p>{% endif %}
</section>

<section id="retrieval">
<h2>Retrieval</h2>
{% if m.retrieval %}<table class="kv" style="max-width:520px">
{% for k, r in m.retrieval.items() %}<tr><td>{{ k }}</td><td class="r">{{ fmt.measure(r, 3) }}</td></tr>{% endfor %}
</table>{% else %}<p class="missing">Retrieval metrics not measured (they need relevance judgements: a BEIR qrels file).</p>{% endif %}
</section>

<section id="cost">
<h2>Cost over time</h2>
{% if m.cost %}
{{ cost_svg }}
<div class="cols"><div>
<h3>Totals over {{ m.cost.horizon_months }} months</h3>
<table><tr><th>option</th><th class="r">total</th></tr>
{% for c in m.cost.curves %}<tr><td>{{ c.label }}{% if c.option == pick %} <strong>(pick)</strong>{% endif %}{% if c.option == m.cost.cheapest %} <span class="tag">cheapest</span>{% endif %}</td>
<td class="r">{{ fmt.money(c.total) }}{% if c.p10 and c.p90 %} <span class="note">P10 {{ fmt.money(c.p10[-1]) }}{% if c.p50_total is not none %} &middot; P50 {{ fmt.money(c.p50_total) }}{% endif %} &middot; P90 {{ fmt.money(c.p90[-1]) }}</span>{% endif %}{% if v and v.win_share.get(c.option) is not none %} <span class="note">wins {{ fmt.share(v.win_share[c.option]) }}</span>{% endif %}</td></tr>{% endfor %}
</table></div><div>
<h3>Break-even between each pair</h3>
<table><tr><th>pair</th><th>cheaper at the horizon</th><th class="r">from month</th><th class="r">volume flip (queries/month)</th></tr>
{% for p in m.cost.break_even %}<tr><td>{{ names.get(p.a, p.a) }} vs {{ names.get(p.b, p.b) }}</td><td>{{ names.get(p.cheaper, p.cheaper) }}{% if p.difference is not none %} by {{ fmt.money(p.difference | abs) }}{% endif %}</td>
<td class="r">{{ p.month if p.month else "never" }}</td><td class="r">{{ fmt.number(p.volume) if p.volume else "-" }}</td></tr>{% endfor %}
</table></div></div>
{% else %}<p class="missing">Cost not measured: cost.json is missing (run <code>ragortune cost --json</code>).</p>{% endif %}
</section>

<section id="sensitivity">
<h2>Sensitivity</h2>
{% if m.sensitivity is not none %}
{% if m.sensitivity %}<p class="note">Which driver, moved how far, changes the recommendation (the nearest move each way).</p>
<table><tr><th>driver</th><th>move</th><th>then</th></tr>
{% for s in m.sensitivity %}<tr><td>{{ s.driver }}</td><td>{{ s.change }}</td><td>{{ s.outcome }}</td></tr>{% endfor %}
</table>{% else %}<p>No single driver, moved across its swept range, changes the recommendation.</p>{% endif %}
{% endif %}
{% if m.cost_sensitivity %}{% set cols, grid = fmt.pivot(m.cost_sensitivity) %}
<h3>Cheapest option with one cost driver scaled</h3>
<p class="note">The cost model alone (bold red where it differs from today's cheapest); the decision weighs more than cost.</p>
<table><tr><th>driver</th>{% for c in cols %}<th>{{ c }}</th>{% endfor %}</tr>
{% for driver, cells in grid %}<tr><td>{{ driver }}</td>{% for s in cells %}<td>{% if s %}{% if s.flips %}<strong class="wrong">{{ s.outcome }}</strong>{% else %}{{ s.outcome }}{% endif %}{% endif %}</td>{% endfor %}</tr>
{% endfor %}</table>{% endif %}
{% if m.sensitivity is none and not m.cost_sensitivity %}<p class="missing">Sensitivity not measured.</p>{% endif %}
</section>

<section id="disagreements">
<h2>Where the arms disagree</h2>
{% if m.disagreements %}
<p class="note">{{ m.disagreements | length }} of {{ m.questions_asked }} questions: one arm right, another wrong or abstaining. Check the machine here.</p>
<div class="wrap"><table>
<tr><th>question</th><th>gold</th>{% for arm in disagree_arms %}<th>{{ arm }}</th>{% endfor %}</tr>
{% for d in m.disagreements %}<tr><td>{{ d.question }}</td><td>{{ d.gold if d.gold is not none else "not recorded" }}</td>
{% for arm in disagree_arms %}{% set ok = d.correct.get(arm) %}<td class="{{ 'right' if ok else ('wrong' if ok is sameas false else '') }}">{{ d.answers.get(arm, "") }}{% if d.cited.get(arm) %}<div class="note">cited: {{ d.cited[arm] }}</div>{% endif %}</td>{% endfor %}</tr>
{% endfor %}</table></div>
{% elif m.present["answers.csv"] %}<p>The arms agree on all {{ m.questions_asked }} questions.</p>
{% else %}<p class="missing">Per-question answers not recorded (answers.csv is missing).</p>{% endif %}
</section>

<section id="provenance">
<h2>How this was measured</h2>
{% if m.run %}<div class="cols">
{% for section, rows in m.run.items() %}<div><h3>{{ section }}</h3><table class="kv">
{% for k, val in rows.items() %}<tr><td>{{ k }}</td><td>{{ val }}</td></tr>{% endfor %}
</table></div>{% endfor %}
</div>{% else %}<p class="missing">No run record (run.json, evidence.json) in the folder.</p>{% endif %}
</section>
<footer>Made by ragortune {{ version }}. This page loads nothing from anywhere: it is one file.</footer>
</body>
</html>
"""

_ENV = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
_PAGE = _ENV.from_string(_TEMPLATE)


def render_html(model: ReportModel) -> str:
    """The whole page as one string."""
    v = model.verdict
    pick = v.option if v else None
    arms_in_table = list(dict.fromkeys(arm for d in model.disagreements for arm in d.answers))
    return _PAGE.render(
        m=model, v=v, fmt=fmt, names=OPTION_NAMES, pick=pick, version=__version__,
        built_at=utc_now(),
        scenario=(v.scenario if v and v.scenario else (model.cost.scenario if model.cost
                                                        else None)),
        missing=[name for name, here in model.present.items() if not here],
        wilson=any(a.accuracy.interval_source and "wilson" in a.accuracy.interval_source
                   for a in model.arms),
        acc_svg=Markup(accuracy_chart(model.arms)) if any(
            a.accuracy.value is not None for a in model.arms) else None,
        cost_svg=Markup(cost_chart(model.cost, pick)) if model.cost else None,
        disagree_arms=arms_in_table,
        subsets=any(a.accuracy_unseen_phrasing.value is not None for a in model.arms))
