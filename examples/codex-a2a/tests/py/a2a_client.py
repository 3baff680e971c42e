"""Drives codex-a2a with the official A2A Python client (a2a-sdk).

    python a2a_client.py SCENARIO URL VERSION [ARGS...]

VERSION is 1.0 (the SDK's own protocol) or 0.3 (the SDK's compat transport,
chosen by offering only the card's 0.3 interface). Each scenario asserts
what it can see, and prints one JSON object for the Rust test to check.
Set A2A_TOKEN to send a bearer token.
"""

import asyncio
import json
import os
import sys
import time
import uuid

import httpx
from google.protobuf import json_format, struct_pb2

from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types.a2a_pb2 import (
    AgentInterface,
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskState,
)


async def make_client(url, version, streaming):
    headers = {}
    if os.environ.get("A2A_TOKEN"):
        headers["Authorization"] = "Bearer " + os.environ["A2A_TOKEN"]
    http = httpx.AsyncClient(timeout=120, headers=headers)
    card = await A2ACardResolver(http, url).get_agent_card()
    wanted = [i for i in card.supported_interfaces if i.protocol_version == version]
    assert wanted, f"the card offers no {version} interface: {card.supported_interfaces}"
    del card.supported_interfaces[:]
    card.supported_interfaces.append(
        AgentInterface(url=wanted[0].url, protocol_binding="JSONRPC", protocol_version=version)
    )
    factory = ClientFactory(ClientConfig(httpx_client=http, streaming=streaming))
    return factory.create(card)


def user(text=None, data=None, context_id=None, task_id=None):
    part = Part(text=text) if text is not None else Part(data=json_format.ParseDict(data, struct_pb2.Value()))
    return Message(
        message_id=str(uuid.uuid4()),
        role=Role.ROLE_USER,
        parts=[part],
        context_id=context_id or "",
        task_id=task_id or "",
    )


async def send(client, message, return_immediately=False):
    request = SendMessageRequest(message=message)
    request.configuration.return_immediately = return_immediately
    last = None
    async for response in client.send_message(request):
        last = response
    assert last is not None and last.HasField("task"), f"no task in {last}"
    return last.task


def artifact_text(task):
    return "".join(p.text for a in task.artifacts for p in a.parts)


def state(task):
    return TaskState.Name(task.status.state)


async def expect_error(coro, code_name):
    try:
        await coro
    except Exception as e:  # noqa: BLE001 - the SDK's A2A errors share no base with A2AClientError
        assert type(e).__name__ == code_name, f"expected {code_name}, got {type(e).__name__}: {e}"
        return str(e)
    raise AssertionError(f"expected {code_name}, got an answer")


async def basic(url, version):
    """send, stream, get, list, cancel, and the errors of get and cancel."""
    client = await make_client(url, version, streaming=False)
    out = {}
    task = await send(client, user("Hello there"))
    assert state(task) == "TASK_STATE_COMPLETED", task
    assert artifact_text(task) == "Hello from the mock model.", task
    out["send"] = state(task)
    context = task.context_id

    got = await client.get_task(GetTaskRequest(id=task.id))
    assert got.id == task.id and state(got) == "TASK_STATE_COMPLETED"
    assert any(m.role == Role.ROLE_USER and m.parts[0].text == "Hello there" for m in got.history), got
    out["get"] = state(got)

    streaming = await make_client(url, version, streaming=True)
    events = []
    async for response in streaming.send_message(SendMessageRequest(message=user("stream it", context_id=context))):
        events.append(response.WhichOneof("payload"))
        if response.HasField("status_update"):
            final_state = TaskState.Name(response.status_update.status.state)
        if response.HasField("task"):
            stream_task_id = response.task.id
    chunks = events.count("artifact_update")
    assert chunks >= 2, f"expected an artifact chunk per delta, got {events}"
    assert final_state == "TASK_STATE_COMPLETED", events
    streamed = await client.get_task(GetTaskRequest(id=stream_task_id))
    assert artifact_text(streamed) == "Hello from the mock model.", streamed
    out["stream"] = {"events": events[:1] + ["..."] + events[-1:], "artifact_chunks": chunks}

    if version == "1.0":
        listed = await client.list_tasks(ListTasksRequest(context_id=context))
        ids = [t.id for t in listed.tasks]
        assert task.id in ids and stream_task_id in ids, listed
        assert listed.total_size == 2, listed
        out["list"] = len(ids)

    # Cancel: a slow turn (20 words, 100 ms apart) is interrupted.
    slow = await send(client, user("slow please", context_id=context), return_immediately=True)
    await asyncio.sleep(0.5)
    started = time.monotonic()
    canceled = await client.cancel_task(CancelTaskRequest(id=slow.id))
    took = time.monotonic() - started
    assert state(canceled) == "TASK_STATE_CANCELED", canceled
    assert took < 2.0, f"cancel took {took:.2f} s"
    out["cancel"] = {"state": state(canceled), "seconds": round(took, 3)}
    out["cancel_again"] = await expect_error(client.cancel_task(CancelTaskRequest(id=slow.id)), "TaskNotCancelableError")
    out["get_unknown"] = await expect_error(client.get_task(GetTaskRequest(id="no-such-task")), "TaskNotFoundError")

    # The context goes on after the cancel.
    after = await send(client, user("still there?", context_id=context))
    assert state(after) == "TASK_STATE_COMPLETED", after
    out["after_cancel"] = state(after)
    return out


async def approval(url, version, answer):
    """A command that needs approval: input-required, then the answer."""
    client = await make_client(url, version, streaming=False)
    asked = await send(client, user("please run: touch approved_by_a2a.txt"))
    assert state(asked) == "TASK_STATE_INPUT_REQUIRED", asked
    question = " ".join(p.text for p in asked.status.message.parts if p.text)
    assert "touch approved_by_a2a.txt" in question, question
    if answer == "approve-text":
        reply = user("approve", task_id=asked.id, context_id=asked.context_id)
    elif answer == "decline-data":
        reply = user(data={"decision": "decline"}, task_id=asked.id, context_id=asked.context_id)
    else:
        raise SystemExit(f"unknown answer {answer}")
    done = await send(client, reply)
    assert state(done) == "TASK_STATE_COMPLETED", done
    return {"question": question, "final": state(done), "text": artifact_text(done)}


async def subscribe(url, version):
    """SubscribeToTask / tasks/resubscribe on a running task."""
    client = await make_client(url, version, streaming=False)
    task = await send(client, user("slow words"), return_immediately=True)
    streaming = await make_client(url, version, streaming=True)
    events = []
    async for response in streaming.subscribe(SubscribeToTaskRequest(id=task.id)):
        events.append(response.WhichOneof("payload"))
        if response.HasField("status_update"):
            final_state = TaskState.Name(response.status_update.status.state)
    assert final_state == "TASK_STATE_COMPLETED", events
    done = await client.get_task(GetTaskRequest(id=task.id))
    assert artifact_text(done).startswith("w1 w2"), done
    return {"events": len(events), "final": final_state}


async def concurrent(url, version, contexts, messages):
    """CONTEXTS contexts x MESSAGES messages, all sent at once."""
    client = await make_client(url, version, streaming=False)
    ids = [str(uuid.uuid4()) for _ in range(int(contexts))]

    async def one(context, i):
        task = await send(client, user(f"message {i}", context_id=context))
        return state(task), task.context_id == context

    started = time.monotonic()
    results = await asyncio.gather(*(one(c, i) for c in ids for i in range(int(messages))))
    took = time.monotonic() - started
    states = [s for s, _ in results]
    assert all(same for _, same in results)
    assert states.count("TASK_STATE_COMPLETED") == len(states), states
    return {"answered": len(states), "seconds": round(took, 2)}


async def recall(url, version, context_id, earlier_task_id):
    """After a fault: the earlier task is still there, and the context goes on with its history."""
    client = await make_client(url, version, streaming=False)
    earlier = await client.get_task(GetTaskRequest(id=earlier_task_id))
    task = await send(client, user("recall", context_id=context_id))
    assert task.context_id == context_id, task
    return {
        "earlier": state(earlier),
        "earlier_text": artifact_text(earlier),
        "recall": state(task),
        "recall_text": artifact_text(task),
    }


async def main():
    scenario, url, version, *rest = sys.argv[1:]
    result = await globals()[scenario](url, version, *rest)
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
