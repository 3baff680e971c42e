#!/usr/bin/env python3
"""Writes the hand-made and transcript seeds of fuzz/corpus/.

Run from anywhere: `python3 fuzz/make_seeds.py`. It rewrites only the files it
names (prefixes `edge-` and `codex-`); regression seeds (`regression-*`),
added by hand from fuzzer crashes, are left alone. The transcripts come from
../shared/codex/transcripts (recorded `codex app-server` sessions).
"""

import glob
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
TRANSCRIPTS = os.path.join(HERE, "..", "..", "shared", "codex", "transcripts")

# Lines longer than this are not taken as single-message seeds.
MAX_SEED_LINE = 6 * 1024


def write(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def nested(depth, inner="1"):
    return "[" * depth + inner + "]" * depth


def transcript_lines():
    """(file name, line bytes) for every line the server or client wrote."""
    for path in sorted(glob.glob(os.path.join(TRANSCRIPTS, "*.jsonl"))):
        with open(path, "rb") as f:
            for line in f:
                line = line.rstrip(b"\n")
                if line:
                    yield os.path.basename(path), line


def shape(value):
    """What makes two messages different enough to both be seeds."""
    if "method" in value:
        return ("method", value["method"], "id" in value)
    kind = "error" if "error" in value else "result"
    body = value.get(kind)
    keys = tuple(sorted(body)) if isinstance(body, dict) else type(body).__name__
    return (kind, keys)


def transcript_messages():
    """The shortest and the longest line of each message shape."""
    by_shape = {}
    for _, line in transcript_lines():
        if len(line) > MAX_SEED_LINE:
            continue
        by_shape.setdefault(shape(json.loads(line)), []).append(line)
    for s, lines in sorted(by_shape.items(), key=lambda kv: repr(kv[0])):
        lines.sort(key=len)
        for line in {lines[0], lines[-1]}:
            yield s, line


def slug(s):
    if s[0] == "method":
        text = ("request-" if s[2] else "notification-") + s[1]
    else:
        keys = s[1] if isinstance(s[1], tuple) else (s[1],)
        text = s[0] + "-" + "-".join(keys[:3])
    return "".join(c if c.isalnum() or c == "-" else "_" for c in text)


# One frame each: hand-made edge cases of classification and serialization.
MESSAGE_EDGES = {
    "empty": "",
    "whitespace": " \t\r\n",
    "empty-object": "{}",
    "request-number-id": '{"jsonrpc":"2.0","id":1,"method":"m","params":[1,"a",null]}',
    "request-string-id": '{"id":"1","method":"m","params":{"a":{"b":[]}}}',
    "request-null-id": '{"id":null,"method":"m"}',
    "request-null-params": '{"id":0,"method":"m","params":null}',
    "request-float-id": '{"id":1.0,"method":"m"}',
    "request-exp-id": '{"id":1e2,"method":"m"}',
    "request-negative-zero-id": '{"id":-0,"method":"m"}',
    "request-bool-id": '{"id":true,"method":"m"}',
    "request-object-id": '{"id":{},"method":"m"}',
    "request-method-number": '{"id":1,"method":7}',
    "id-i64-max": '{"id":9223372036854775807,"result":1}',
    "id-i64-min": '{"id":-9223372036854775808,"result":1}',
    "id-over-i64": '{"id":9223372036854775808,"result":1}',
    "id-over-u64": '{"id":18446744073709551616,"result":1}',
    "id-huge-exponent": '{"id":1e400,"result":1}',
    "id-empty-string": '{"id":"","result":{}}',
    "id-unicode": '{"id":"\\u00e9\\ud83d\\ude00\\u0000","result":0}',
    "floats": '{"method":"f","params":[0.1,2.638344616030823e-256,1.7976931348623157e308,'
    '5e-324,-0.0,1e-7,123456789012345678901234567890,0.30000000000000004]}',
    "float-overflow": '{"method":"f","params":1e400}',
    "huge-number-ignored-member": '{"method":"f","x":1e400}',
    "huge-integer-literal": '{"method":"f","params":' + "9" * 400 + "}",
    "duplicate-id": '{"id":1,"id":2,"result":null}',
    "duplicate-method": '{"method":"a","method":"b"}',
    "duplicate-params-key": '{"method":"a","params":{"k":1,"k":2}}',
    "duplicate-unknown-member": '{"method":"a","x":1,"x":2}',
    "notification-no-params": '{"method":"initialized"}',
    "notification-jsonrpc-1": '{"jsonrpc":"1.0","method":"m"}',
    "notification-jsonrpc-number": '{"jsonrpc":2,"method":"m"}',
    "result-null": '{"id":"x","result":null}',
    "result-without-id": '{"result":1}',
    "result-null-id": '{"id":null,"result":1}',
    "result-and-error": '{"id":1,"result":1,"error":{"code":1,"message":""}}',
    "error-null-id": '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}',
    "error-no-id": '{"error":{"code":-32601,"message":"nope"}}',
    "error-data": '{"id":7,"error":{"code":-32600,"message":"x","data":{"a":[1,2]}}}',
    "error-data-null": '{"id":7,"error":{"code":-32600,"message":"x","data":null}}',
    "error-float-code": '{"id":7,"error":{"code":-32600.5,"message":"x"}}',
    "error-no-message": '{"id":7,"error":{"code":1}}',
    "error-string": '{"id":7,"error":"boom"}',
    "error-extra-members": '{"id":7,"error":{"code":1,"message":"m","extra":true}}',
    "error-code-over-i64": '{"id":7,"error":{"code":9223372036854775808,"message":"m"}}',
    "no-shape-number": "42",
    "no-shape-string": '"x"',
    "no-shape-null": "null",
    "truncated": '{"id":1,"method":"m"',
    "trailing-garbage": '{"method":"m"} x',
    "two-objects": '{"method":"a"}{"method":"b"}',
    "trailing-crlf": '{"method":"m"}\r\n',
    "leading-form-feed": '\x0c{"method":"m"}',
    "bom": '\ufeff{"method":"m"}',
    "lone-surrogate": '{"method":"\\ud800"}',
    "escaped-newline": '{"method":"a\\nb","params":"line\\r\\nbreak"}',
    "control-char-raw": '{"method":"a\x01b"}',
    "deep-100": '{"method":"d","params":' + nested(100) + "}",
    "deep-126": '{"method":"d","params":' + nested(126) + "}",
    "deep-127": '{"method":"d","params":' + nested(127) + "}",
    "deep-2000": '{"method":"d","params":' + nested(2000) + "}",
    "deep-ignored-member": '{"method":"d","x":' + nested(200) + "}",
    "deep-batch": nested(127, '{"method":"d"}'),
    "batch-mixed": '[{"method":"a"},{"id":1,"result":2},7,{"id":"1","method":"b"}]',
    "batch-empty": "[]",
    "batch-empty-spaced": " \n[ ]",
    "batch-one": '[{"id":1,"error":{"code":1,"message":"m"}}]',
    "batch-nested": '[[{"method":"a"}]]',
    "batch-truncated": '[{"method":"a"},',
    "batch-duplicates": '[{"id":1,"id":1,"result":1},{"method":"a","method":"a"}]',
}

# Whole streams for the frame decoders: edge cases of the newline framing.
NDJSON_EDGES = {
    "empty": b"",
    "newlines-only": b"\n\n\n",
    "blank-lines": b'\n \n\t\r\n\x0c\n{"method":"a"}\n\x0b\n\n{"method":"b"}\n',
    "crlf": b'{"id":1,"result":1}\r\n{"method":"m"}\r\n',
    "cr-only": b'{"method":"a"}\r{"method":"b"}\r',
    "double-cr": b'{"method":"a"}\r\r\n\r\n\r',
    "lone-cr-tail": b'{"method":"a"}\n\r',
    "no-trailing-newline": b'{"method":"a"}\n{"method":"b"}',
    "invalid-utf8": b'{"method":"a"}\n{"method":"\xff\xfe"}\n{"method":"b"}\n',
    "invalid-utf8-tail": b'{"method":"a"}\n\xc3',
    "truncated-utf8-then-crlf": b'{"method":"\xe2\x82"}\r\n{"method":"\xe2\x82\xac"}\r\n',
    "multibyte": '{"method":"é"}\n{"method":"😀😀😀"}\n{"params":"日本語"}\n'.encode(),
    "nul-bytes": b'{"method":"a"}\x00\n\x00\n\x00',
    "oversized-line": b'{"method":"a"}\n{"method":"' + b"x" * 20000 + b'"}\n{"method":"b"}\n',
    "oversized-tail": b'{"method":"a"}\n' + b"y" * 5000,
    "oversized-crlf": b'{"m":1}\n{"m":12}\r\n{"m":1}\r\n',
    # Too-long responses: id first (decided from the first bytes), id last
    # (read from the last bytes), a request with an id (never attributed),
    # an id cut mid-number, and one cut by the end of the stream.
    "oversized-responses": b'{"id":7,"result":"' + b"r" * 6000 + b'"}\n'
    b'{"jsonrpc":"2.0","result":{"d":"' + b"s" * 6000 + b'"},"id":"last"}\r\n'
    b'{"id":8,"method":"m","params":"' + b"p" * 6000 + b'"}\n'
    b'{"error":{"code":-32603,"data":"' + b"e" * 6000 + b'"} , "id" : -12 }\n'
    b'{"id":123456789,"result":"' + b"t" * 5000,
    "limit-exact-then-over": b"0123456789\n0123456789\r\n01234567890\n012345678\n",
    "limit-blank-over": b"ab\n      \n\t\t\t\r\n",
    "batch-line": b'[{"method":"a"},{"id":1,"result":2}]\n[]\n',
    "garbage-lines": b"not json\n{\n}\n[1\n",
}



def lsp(body):
    if isinstance(body, str):
        body = body.encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


# Whole streams for the Content-Length framing: every documented rule.
CONTENT_LENGTH_EDGES = {
    "empty": b"",
    "one-frame": lsp('{"jsonrpc":"2.0","id":1,"result":null}'),
    "two-frames-content-type": b"content-length: 2\r\nContent-Type: application/vscode-jsonrpc;"
    b" charset=utf-8\r\n\r\n{}Content-Type: x\r\nCONTENT-LENGTH:\t3 \r\nX-Other: y\r\n\r\n[1]",
    "empty-body": lsp("") + lsp("{}"),
    "oversized-responses": lsp('{"id":7,"result":"' + "r" * 6000 + '"}')
    + lsp('{"result":{"d":"' + "s" * 6000 + '"},"id":"last"}')
    + lsp('{"id":8,"method":"m","params":"' + "p" * 6000 + '"}')
    + lsp("[]") + b"Content-Length: 9000\r\n\r\n" + b'{"id":3,"error":{"data":"',
    "body-with-headers-inside": lsp("Content-Length: 5\r\n\r\nabcde\r\n\r\n") + lsp("[]"),
    "whitespace-between-frames": b"\r\n\n " + lsp("{}") + b"\n\r\n" + lsp("[]") + b"\n",
    "junk-line-before-header": lsp("{}") + b"Listening on stdio\r\n" + lsp("[]"),
    "bare-lf-junk": b"debug: started\n" + lsp("[]"),
    "bare-lf-header": b"Content-Length: 2\n\n{}" + lsp("[]"),
    "missing-length": b"Content-Type: x\r\n\r\n{\"lost\":1}" + lsp("[]"),
    "duplicate-length": b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}" + lsp("[]"),
    "non-numeric-lengths": b"".join(
        b"Content-Length: " + bad + b"\r\n\r\n{\"lost\":1}" + lsp("[]")
        for bad in [b"abc", b"-1", b"+2", b"1 2", b"0x10", b""]),
    "bad-header-names": b"".join(
        line + b"\r\n\r\n" + lsp("[]")
        for line in [b"Content Length: 2", b": 2", b"Content-Length 2", b"X-A: \x01",
                     b"X-\xc3\xa9: 1"]),
    "overflowing-length": b"Content-Length: 99999999999999999999999\r\n\r\n{}" + lsp("[]"),
    "u64-max-length": b"Content-Length: 18446744073709551615\r\n\r\n{}",
    "claimed-60mb": b"Content-Length: 60000000\r\n\r\n{",
    "claimed-over-default-max": b"Content-Length: 67108865\r\n\r\n{}" + lsp("[]"),
    "oversized-body-then-frame": b"Content-Length: 40\r\n\r\n" + b"z" * 40 + lsp("{}"),
    "endless-header": b"a" * 9000 + lsp("{}"),
    "header-at-size-cap": b"Content-Length: 2\r\nX: " + b"p" * (8192 - 26) + b"\r\n\r\n{}",
    "header-over-size-cap": b"Content-Length: 2\r\nX: " + b"p" * (8192 - 25) + b"\r\n\r\n{}"
    + lsp("[]"),
    "eof-in-body": b"Content-Length: 10\r\n\r\n{\"a\"",
    "eof-in-header": b"Content-Length: 2\r\n\r",
    "eof-in-name": b"Content-Len",
    "eof-in-skipped-body": b"Content-Length: 100\r\n\r\n{\"a\":",
    "eof-while-resyncing": b"garbage\r\nmore garbage",
    "resync-needle-lowercase": b"junk\r\nxxcontent-length: 2\r\n\r\n{}",
    "resync-partial-needles": b"bad\r\nContent-Len Content-Length Content-Length:",
    "newline-delimited-input": b'{"method":"a"}\n{"method":"b"}\n',
    "utf8-body": lsp('{"\u00e9":"\u00fc"}'.encode().decode("unicode_escape").encode()),
    "invalid-utf8-body": lsp(b'{"a":"\xff\xfe"}') + lsp(b"\xc3"),
}

# Notifications (one JSON-RPC message per line) for the codex event mapping.
CODEX_EDGES = {
    "empty": "",
    "unknown-method": '{"method":"no/such/notification","params":{"a":[1,{"b":null}]}}',
    "unknown-legacy": '{"method":"codex/event/brand_new","params":{"id":"0","msg":{"type":"x"}}}',
    "legacy-prefix-only": '{"method":"codex/event/","params":{}}',
    "params-kinds": "\n".join(
        '{"method":"%s","params":%s}' % (m, p)
        for m in ["turn/completed", "item/completed", "codex/event/exec_command_end"]
        for p in ["null", "[]", "7", '"s"', "true", "{}"]),
    "no-params": '{"method":"turn/started"}\n{"method":"codex/event/task_complete"}',
    "bare-values": '{"turn":{"id":1,"status":null},"item":{"type":7}}\n[1,2]\n"x"\n1e308\nnull',
    "turn-completed-statuses": "\n".join(
        '{"method":"turn/completed","params":{"threadId":"t","turn":{"id":"u","status":%s,'
        '"error":%s}}}' % (s, e)
        for s, e in [('"completed"', "null"), ('"interrupted"', "null"), ('"failed"', "null"),
                     ('"failed"', '{"message":7,"codexErrorInfo":null}'), ("5", "[]"),
                     ('"weird"', '{"message":"m","codexErrorInfo":{"a_b":{"c_d":"e_f"}}}')]),
    "items-open-then-retry": "\n".join([
        '{"method":"turn/started","params":{"threadId":"t","turn":{"id":"u"}}}',
        '{"method":"item/started","params":{"item":{"type":"agentMessage","id":"m1"}}}',
        '{"method":"item/started","params":{"item":{"type":"reasoning","id":"r1"}}}',
        '{"method":"item/started","params":{"item":{"type":"commandExecution","id":"c1",'
        '"command":"ls"}}}',
        '{"method":"error","params":{"error":{"message":"retry"},"willRetry":true}}',
        '{"method":"item/started","params":{"item":{"type":"agentMessage","id":"m1"}}}',
        '{"method":"item/completed","params":{"item":{"type":"agentMessage","id":"m1","text":"x"}}}',
    ]),
    "two-outcomes": "\n".join([
        '{"method":"turn/completed","params":{"turn":{"id":"u","status":"completed"}}}',
        '{"method":"codex/event/task_complete","params":{"id":"0","msg":{}}}',
        '{"method":"turn/completed","params":{"turn":{"id":"u","status":"failed"}}}',
    ]),
    "legacy-error-then-complete": "\n".join([
        '{"method":"codex/event/task_started","params":{"id":"0","msg":{}}}',
        '{"method":"codex/event/error","params":{"id":"0","msg":{"message":"boom",'
        '"codex_error_info":{"response_stream_disconnected":{"http_status_code":500}}}}}',
        '{"method":"codex/event/task_complete","params":{"id":"0","msg":{}}}',
    ]),
    "legacy-exec": "\n".join([
        '{"method":"codex/event/exec_command_begin","params":{"id":"0","msg":{"call_id":"c",'
        '"command":["bash","-lc","echo hi && it\'s"],"cwd":"/"}}}',
        '{"method":"codex/event/exec_command_output_delta","params":{"id":"0","msg":{"call_id":"c",'
        '"chunk":"aGVsbG8tZnJvbS1zaGVsbAo=!!==-_\\u00e9"}}}',
        '{"method":"codex/event/exec_command_output_delta","params":{"id":"0","msg":{"call_id":"c",'
        '"chunk":"////"}}}',
        '{"method":"codex/event/exec_command_end","params":{"id":"0","msg":{"call_id":"c",'
        '"command":[1,null],"exit_code":-1,"duration":{"secs":3,"nanos":999999999}}}}',
    ]),
    "legacy-mcp-and-patch": "\n".join([
        '{"method":"codex/event/mcp_tool_call_end","params":{"id":"0","msg":{"call_id":"m",'
        '"invocation":{"server":"s","tool":"t"},"result":{"Err":"e"}}}}',
        '{"method":"codex/event/mcp_tool_call_end","params":{"id":"0","msg":{"result":[1]}}}',
        '{"method":"codex/event/patch_apply_begin","params":{"id":"0","msg":{"call_id":"p",'
        '"changes":{"a.txt":{"type":"add","content":"x"},"b":7}}}}',
        '{"method":"codex/event/exec_command_output_delta","params":{"id":"0","msg":{"call_id":"p",'
        '"chunk":"eA=="}}}',
        '{"method":"codex/event/patch_apply_end","params":{"id":"0","msg":{"call_id":"p",'
        '"success":"yes"}}}',
    ]),
    "token-counts": "\n".join([
        '{"method":"thread/tokenUsage/updated","params":{"tokenUsage":{"total":{"inputTokens":-1,'
        '"outputTokens":1.5,"totalTokens":18446744073709551615},"modelContextWindow":1e400}}}',
        '{"method":"codex/event/token_count","params":{"id":"0","msg":{"info":null}}}',
        '{"method":"codex/event/token_count","params":{"id":"0","msg":{"info":{'
        '"total_token_usage":{"input_tokens":18446744073709551615}}}}}',
    ]),
    "huge-numbers": '{"method":"codex/event/exec_command_end","params":{"id":"0","msg":{'
    '"exit_code":9223372036854775807,"duration":{"secs":4294967295,"nanos":18446744073709551615}}}}',
    "deep-nesting": '{"method":"item/completed","params":{"item":{"type":"mcpToolCall",'
    '"result":' + nested(120) + "}}}",
    "duplicate-keys": '{"method":"turn/started","params":{"turn":{"id":"a","id":"b"},'
    '"threadId":"t","threadId":7}}',
    "crlf-and-blank-lines": '\r\n{"method":"warning","params":{"message":"w"}}\r\n\r\n',
    "invalid-utf8": b'{"method":"warning","params":{"message":"\xff"}}\n{"method":"warn\xc3"}',
    "batch-line": '[{"method":"turn/started","params":{}},{"method":"error","params":{}}]',
    "request-approval": '{"id":0,"method":"item/commandExecution/requestApproval",'
    '"params":{"threadId":"t","turnId":"u","itemId":"c1"}}',
}

# Server transcripts replayed whole, one scenario each, for the turn decoder.
CODEX_SESSIONS = [
    "text_latest", "text072", "errors_latest", "http500_retry072", "failed_noretry_latest",
    "interrupt_command_latest", "interrupt_streaming072", "patch_untrusted_accept_latest",
    "shell_untrusted_decline072", "shell_untrusted_cancel_latest", "v1api_shell_untrusted072",
]


def main():
    for name, text in MESSAGE_EDGES.items():
        write("message_roundtrip", "edge-" + name, text)
    for s, line in transcript_messages():
        write("message_roundtrip", "codex-%s-%d" % (slug(s), len(line)), line)
    for name, data in NDJSON_EDGES.items():
        write("ndjson_frames", "edge-" + name, data)
    # Whole recorded sessions, as the peer wrote them.
    for name in ["errors_latest", "text_latest", "shell_untrusted_cancel_latest",
                 "interrupt_streaming_latest", "patch_untrusted_accept072"]:
        with open(os.path.join(TRANSCRIPTS, name + ".jsonl"), "rb") as f:
            write("ndjson_frames", "codex-" + name, f.read())
    for name, data in CONTENT_LENGTH_EDGES.items():
        write("content_length_frames", "edge-" + name, data)
    # Recorded sessions, framed as a language server would send them.
    for name in ["errors_latest", "interrupt_streaming_latest"]:
        with open(os.path.join(TRANSCRIPTS, name + ".jsonl"), "rb") as f:
            write("content_length_frames", "codex-" + name,
                  b"".join(lsp(line.rstrip(b"\n")) for line in f))
    for name, data in CODEX_EDGES.items():
        write("codex_events", "edge-" + name, data)
    for name in CODEX_SESSIONS:
        with open(os.path.join(TRANSCRIPTS, name + ".jsonl"), "rb") as f:
            write("codex_events", "codex-" + name, f.read())


if __name__ == "__main__":
    main()
