package io.stargazer.bus.internal;

/** The member names of the tools request and reply envelopes (wire-format.md, "Tools request / reply"). */
final class ToolWire {
    static final String REQUEST_ID = "request_id";
    static final String TOOL = "tool";
    static final String ARGS = "args";
    static final String REPLY_TO = "reply_to";
    static final String DEADLINE_MS = "deadline_ms";
    static final String TRACE_ID = "trace_id";

    static final String OK = "ok";
    static final String RESULT = "result";
    static final String ERROR = "error";
    static final String ERROR_TYPE = "type";
    static final String ERROR_MESSAGE = "message";

    private ToolWire() {
    }
}
