# Writes chat_conversations.json (the conversations the chat template test renders). Run once;
# the JSON is committed. Kept so the cases are easy to extend.
import json

weather = {"type": "function", "function": {
    "name": "get_weather",
    "description": "Get the current weather in a given location.\n",
    "parameters": {"type": "object", "properties": {
        "location": {"type": "string", "description": "City and country, e.g. Paris, France"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": " Unit "}},
        "required": ["location"]}}}
search = {"type": "function", "function": {
    "name": "search_code",
    "description": "Search the repository",
    "parameters": {"type": "object", "properties": {
        "query": {"type": "string"},
        "max_results": {"type": "integer", "default": 10, "minimum": 1},
        "paths": {"type": "array", "items": {"type": "string"}, "description": "Globs"},
        "options": {"type": ["object", "null"], "properties": {"regex": {"type": "boolean"}}}},
        "required": ["query"], "additionalProperties": False}}}
flat_tool = {"name": "run_shell", "description": "Run a command", "parameters": {
    "type": "object", "properties": {"cmd": {"type": "string", "description": "The command"}}}, "strict": True}
bare_tool = {"type": "function", "function": {"name": "now"}}

U = lambda c: {"role": "user", "content": c}
A = lambda c, **kw: {"role": "assistant", "content": c, **kw}
S = lambda c: {"role": "system", "content": c}
T = lambda c: {"role": "tool", "content": c}
call = lambda name, args: {"type": "function", "function": {"name": name, "arguments": args}}

convs = [
    ("user_only_gen", {"messages": [U("Hello!")], "add_generation_prompt": True}),
    ("user_only_nogen", {"messages": [U("Hello!")], "add_generation_prompt": False}),
    ("system_user", {"messages": [S("You are a helpful assistant."), U("Write a haiku.")], "add_generation_prompt": True}),
    ("empty_system", {"messages": [S(""), U("hi")], "add_generation_prompt": True}),
    ("multi_turn", {"messages": [S("Be terse."), U("2+2?"), A("4"), U("3+3?"), A("6"), U("and 4+4?")],
                    "add_generation_prompt": True}),
    ("reasoning_content_last", {"messages": [U("Why is the sky blue?"),
                                             A("Rayleigh scattering.", reasoning_content="Think about light.\n")],
                                "add_generation_prompt": False}),
    ("inline_think_history", {"messages": [U("q1"), A("<think>\nfirst thoughts\n</think>\n\nanswer one"), U("q2"),
                                           A("<think>second</think>answer two")], "add_generation_prompt": False}),
    ("inline_think_then_user", {"messages": [U("q1"), A("<think>\nhmm\n</think>\n\nA1"), U("q2")],
                                "add_generation_prompt": True}),
    ("tools_user", {"messages": [U("Weather in Paris?")], "tools": [weather], "add_generation_prompt": True}),
    ("tools_system_user", {"messages": [S("You are a coding agent."), U("Find TODOs")], "tools": [weather, search],
                           "add_generation_prompt": True}),
    ("tool_call_and_result", {"messages": [U("Weather in Paris?"),
                                           A("", tool_calls=[call("get_weather", {"location": "Paris, France", "unit": "celsius"})]),
                                           T('{"temp": 21.5, "sky": "clear"}')], "tools": [weather],
                              "add_generation_prompt": True}),
    ("parallel_calls", {"messages": [U("Compare Paris and Oslo"),
                                     A("Let me check both.", tool_calls=[call("get_weather", {"location": "Paris"}),
                                                                        call("get_weather", {"location": "Oslo"})]),
                                     T("21C"), T("3C"), A("Paris is warmer."), U("Thanks")], "tools": [weather],
                        "add_generation_prompt": True}),
    ("call_nested_args", {"messages": [U("search"),
                                       A(None, tool_calls=[call("search_code", {"query": "TODO \"fix\" \\n", "max_results": 5,
                                                                               "paths": ["src/*.cpp", "include/**"],
                                                                               "options": {"regex": True, "score": 0.5, "eps": 1e-7, "none": None}})]),
                                       T("no results")], "tools": [search], "add_generation_prompt": True}),
    ("unicode", {"messages": [S("Répondez en français 🚀"), U("日本語で答えて: ünïcödé ñ"), A("はい 👍🏽")],
                 "add_generation_prompt": True}),
    ("no_thinking", {"messages": [U("quick answer")], "add_generation_prompt": True, "enable_thinking": False}),
    ("multi_step_tools", {"messages": [U("Fix the build"),
                                       A("<think>look at errors</think>Checking.", tool_calls=[call("run_shell", {"cmd": "make"})]),
                                       T("error: x"),
                                       A("Fixing.", tool_calls=[call("run_shell", {"cmd": "sed -i s/x/y/ a.c"})]),
                                       T("ok")], "tools": [flat_tool], "add_generation_prompt": True}),
    ("flat_and_bare_tools", {"messages": [U("time?")], "tools": [flat_tool, bare_tool], "add_generation_prompt": True}),
    ("system_in_middle", {"messages": [U("hi"), A("hello"), S("New instructions: be formal."), U("hey")],
                          "add_generation_prompt": True}),
    ("whitespace_content", {"messages": [S("  padded system  \n"), U("\n\n  spaced user\n"), A("\n answer \n\n")],
                            "add_generation_prompt": False}),
    ("ends_with_assistant", {"messages": [U("Complete: def add(a, b):"), A("    return a + b")],
                             "add_generation_prompt": False}),
    ("user_looks_like_tool_response", {"messages": [U("real question"), A("ok"),
                                                    U("<tool_response>\nfake\n</tool_response>")],
                                       "add_generation_prompt": True}),
    ("tool_first_after_system", {"messages": [S("sys"), T("orphan result"), U("what was that?")],
                                 "add_generation_prompt": True}),
    ("extra_fields", {"messages": [{"role": "user", "content": "hi", "name": "bob"}, A("yo", id="m1")],
                      "add_generation_prompt": True, "bos_token": "", "eos_token": "<|im_end|>"}),
    ("call_with_content_and_empty_args", {"messages": [U("now?"), A("Calling now.", tool_calls=[call("now", {})]),
                                                       T("12:00")], "tools": [bare_tool], "add_generation_prompt": False}),
    ("string_arguments", {"messages": [U("x"), A("", tool_calls=[call("run_shell", '{"cmd": "ls"}')]), T("a b")],
                          "tools": [flat_tool], "add_generation_prompt": True}),
    ("long_multiline_code", {"messages": [U("Review:\n```cpp\nint main() {\n\treturn 0;\n}\n```"),
                                          A("Looks fine.\n\n- one\n- two")], "add_generation_prompt": True}),
]
with open("chat_conversations.json", "w", encoding="utf-8") as f:
    json.dump([{"name": n, "context": c} for n, c in convs], f, ensure_ascii=False, indent=1)
print(len(convs))
