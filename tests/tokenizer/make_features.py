# Writes jinja_features.json: small templates exercising one construct each, rendered by our
# interpreter and by jinja2 (HF settings) in test_chat_template.cpp. Run once; the JSON is committed.
import json

ctx = {"xs": [3, 1, 2], "d": {"b": 1, "a": [1, 2.5, None, True], "c": {"k": "v"}}, "s": "  Hello, World!  ",
       "n": 7, "f": 0.1, "big": 1e20, "tiny": 1e-7, "u": "ünï 🚀", "items": [{"name": "x", "v": 2}, {"name": "y", "v": 1}],
       "empty": [], "t": True, "none": None}
feats = [
    ("text_only", "plain text\n", {}),
    ("trailing_newline_dropped", "a\n\n", {}),
    ("trim_lstrip_blocks", "a\n  {% if t %}\n  yes\n  {% endif %}\nb", ctx),
    ("minus_modifiers", "a  \n {%- if t -%}  \n  x  {%- endif %}  \n{{- ' y ' -}}  z", ctx),
    ("plus_modifier", "a\n  {%+ if t %}x{% endif +%}\nb", ctx),
    ("comments", "a\n  {# comment #}\nb {#- c -#}  c", {}),
    ("var_not_lstripped", "a\n  {{ n }}\n", ctx),
    ("if_elif_else", "{% for i in [1,2,3,4] %}{% if i == 1 %}one{% elif i == 2 %}two{% elif i is even %}even{% else %}odd{% endif %},{% endfor %}", {}),
    ("loop_vars", "{% for x in xs %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}/{{ loop.previtem }}/{{ loop.nextitem }};{% endfor %}", ctx),
    ("loop_filter_else", "{% for x in xs if x > 1 %}{{ x }}{{ loop.index }}{% else %}none{% endfor %}|{% for x in empty %}x{% else %}empty{% endfor %}", ctx),
    ("loop_break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x > 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("loop_unpack_items", "{% for k, v in d|items %}{{ k }}={{ v }};{% endfor %}{% for k, v in d.items() %}{{ k }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}", ctx),
    ("loop_scope", "{% set x = 1 %}{% for i in xs %}{% set x = i %}{% endfor %}{{ x }}", ctx),
    ("namespace", "{% set ns = namespace(total=0, names=[]) %}{% for i in xs %}{% set ns.total = ns.total + i %}{% endfor %}{{ ns.total }}", ctx),
    ("set_block", "{% set block %}inner {{ n }}{% endset %}[{{ block }}]", ctx),
    ("macro_defaults_kwargs", "{% macro m(a, b='B', c=none) %}{{ a }}-{{ b }}-{{ c }}{% endmacro %}{{ m(1) }}|{{ m(1, 2) }}|{{ m(1, c=3) }}", {}),
    ("macro_call_block", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold {{ n }}{% endcall %}", ctx),
    ("python_repr", "{{ d }}|{{ xs }}|{{ none }}|{{ t }}|{{ f }}|{{ big }}|{{ tiny }}|{{ 1.0 }}|{{ (1, 'a') }}|{{ [\"it's\", 'say \"hi\"'] }}", ctx),
    ("tojson", "{{ d | tojson }}|{{ u | tojson }}|{{ 'a\"b\\\\c\\n\\t' | tojson }}|{{ d | tojson(indent=2) }}|{{ empty|tojson }}", ctx),
    ("string_filters", "[{{ s | trim }}]|{{ s|length }}|{{ u|length }}|{{ 'abc'|upper }}|{{ 'ABC'|lower }}|{{ 'hello world'|title }}|{{ 'hello'|capitalize }}|{{ 'a-b-c'|replace('-', '+') }}|{{ 42|string }}", ctx),
    ("string_methods", "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ 'xxhixx'.strip('x') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a,b,c'.split(',', 1) }}|{{ s.startswith('  He') }}|{{ s.endswith(('!', '!  ')) }}|{{ 'aaa'.replace('a', 'b', 2) }}|{{ '-'.join(['x','y']) }}|{{ 'abcabc'.find('c') }}|{{ 'abcabc'.count('bc') }}", ctx),
    ("slicing", "{{ xs[1:] }}|{{ xs[:-1] }}|{{ xs[::-1] }}|{{ xs[-1] }}|{{ u[1:3] }}|{{ u[::-1] }}|{{ 'abcdef'[1:5:2] }}|{{ xs[5] }}|{{ u[-1] }}", ctx),
    ("tests", "{{ xs is sequence }}{{ d is mapping }}{{ s is string }}{{ n is number }}{{ n is integer }}{{ f is float }}{{ none is none }}{{ missing is defined }}{{ missing is undefined }}{{ xs is iterable }}{{ t is true }}{{ t is false }}{{ t is boolean }}{{ d is sequence }}{{ s is not string }}{{ n is divisibleby 7 }}{{ missing is iterable }}", ctx),
    ("operators", "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 'ab' * 3 }} {{ 1 + 2.5 }} {{ 'a' ~ 1 ~ none }} {{ xs + [4] }} {{ 1 < 2 }} {{ 'b' > 'a' }} {{ 2 in xs }} {{ 'x' not in 'abc' }} {{ 'a' in d }} {{ not t }} {{ t and 'yes' }} {{ none or 'fallback' }} {{ -n }}", ctx),
    ("conditional_expr", "{{ 'a' if t else 'b' }}|{{ 'a' if none else 'b' }}|{{ 'x' if false }}|{{ xs | tojson if t else 'no' }}", ctx),
    ("precedence", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 'a' ~ 'b' + 'c' }} {{ s | trim + '!' }} {{ not 1 == 2 }} {{ -2 ** 2 }} {{ 10 - 2 - 3 }}", ctx),
    ("filters_misc", "{{ xs|first }}{{ xs|last }}{{ xs|sort }}{{ xs|sort(reverse=true) }}{{ items|map(attribute='name')|join(',') }}{{ items|sort(attribute='v')|map(attribute='name')|list }}{{ xs|join('-') }}{{ missing|default('dflt') }}{{ ''|default('e', true) }}{{ [1,1,2]|unique|list }}{{ xs|reverse|list }}{{ items|selectattr('v', 'equalto', 2)|map(attribute='name')|first }}{{ xs|select('odd')|list }}{{ xs|reject('odd')|list }}{{ '3'|int + 1 }}{{ -3|abs }}{{ 'x\ny'|indent(2, true) }}{{ xs|count }}{{ d|list }}", ctx),
    ("dict_access", "{{ d.b }}{{ d['a'][1] }}{{ d.c.k }}{{ d.get('zz', 'no') }}{{ d.get('b') }}{{ d.missing }}{{ d.keys()|list }}{{ d.values()|list|length }}{{ {'x': 1, 'y': [2]} }}", ctx),
    ("raise_in_branch", "{% if false %}{{ raise_exception('never') }}{% endif %}ok", {}),
    ("raise_exception", "{{ raise_exception('bad role') }}", {}),
    ("undefined_plus", "{{ missing + 'x' }}", {}),
    ("undefined_attr_of_undefined", "{{ missing.attr }}", {}),
    ("strings_escapes", "{{ 'tab\\there' }}|{{ \"dq 'sq'\" }}|{{ 'u\\u00e9' }}|{{ 'a' 'b' }}", {}),
    ("whitespace_crlf_template", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\n", {}),
    ("nested_loops_loopvar", "{% for a in [1,2] %}{% for b in [3,4] %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index }}|{% endfor %}", {}),
    ("set_loop_var", "{% for t in items %}{% if t.name == 'x' %}{% set t = t.v %}{% endif %}{{ t }};{% endfor %}", ctx),
    ("dict_literal_order", "{% set m = {'z': 1, 'a': 2} %}{{ m|tojson }}{% for k in m %}{{ k }}{% endfor %}", {}),
    ("float_repr", "{{ 1e16 }} {{ 1e15 }} {{ 123456789.123 }} {{ 0.0001 }} {{ 0.00001 }} {{ 2.5e-10 }} {{ -0.0 }} {{ 3.0 * 2 }} {{ 10 / 4 }}", {}),
    ("int_repr", "{{ 12345678901234 }} {{ -5 }} {{ 0 }}", {}),
]
with open("jinja_features.json", "w", encoding="utf-8") as f:
    json.dump([{"name": n, "template": t, "context": c} for n, t, c in feats], f, ensure_ascii=False, indent=1)
print(len(feats))
