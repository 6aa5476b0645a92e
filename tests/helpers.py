"""Small helpers shared by tests: driving the simulator API and reading what the bot said."""
from __future__ import annotations


def say(client, user: str, text: str) -> list[dict]:
    return send(client, user, {"type": "message", "message": {"type": "text", "text": text}})


def tap(client, user: str, data: str, display: str = "") -> list[dict]:
    return send(client, user, {"type": "postback", "postback": {"data": data}, "displayText": display})


def send(client, user: str, event: dict) -> list[dict]:
    """The bot's messages (LINE JSON) in answer to one simulated event."""
    response = client.post("/simulator/api/send", json={"user": user, "event": event})
    assert response.status_code == 200, response.get_data(as_text=True)
    return [m["message"] for m in response.json["messages"] if m["direction"] == "out"]


def texts(messages: list[dict]) -> str:
    """Everything a person would read in the messages, flex cards included, as one string."""
    out: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("text", "altText", "label"):
                if isinstance(node.get(key), str):
                    out.append(node[key])
            for value in node.values():
                if isinstance(value, (dict, list)):
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(messages)
    return "\n".join(out)


def quick_labels(messages: list[dict]) -> list[str]:
    return [i["action"]["label"] for m in messages for i in m.get("quickReply", {}).get("items", [])]
