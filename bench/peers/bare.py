"""The ceiling: a Flask endpoint that only checks LINE's signature and answers 200 (gunicorn 'bare:app')."""
import base64
import hashlib
import hmac
import os

from flask import Flask, abort, request

app = Flask(__name__)
SECRET = os.environ["LINE_CHANNEL_SECRET"].encode()


@app.post("/callback")
def callback():
    body = request.get_data()
    expected = base64.b64encode(hmac.new(SECRET, body, hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(expected, request.headers.get("X-Line-Signature", "")):
        abort(400)
    return "OK"
