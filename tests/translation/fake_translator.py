"""The fake OpenAI-compatible server of tests/generation/fake_openai.py, answering as a translator would: a request
for a text it has a hand-made translation of gets that translation (masks kept), a request into English gets the
English source back (a perfect round trip); anything else the server's usual echo. `wrong` makes it answer some
texts in another language, as a translator that ignores the target does."""

from __future__ import annotations

import json
import re
import threading
from http.server import ThreadingHTTPServer

from instructions.segments import protect
from tests.generation import fake_openai
from tests.generation.fake_openai import FakeOpenAI

CODE = "```python\ndef add(a, b):\n    return a + b\n```"
ROWS = [
    {"id": "sky", "instruction": "Explain why the sky is blue on a clear day.", "input": "",
     "output": "Sunlight is scattered by the air, and blue light is scattered the most, so the whole sky looks blue."},
    {"id": "add", "instruction": "Write a Python function that adds two numbers.", "input": "",
     "output": f"Here is the function:\n{CODE}\nIt returns the sum of both numbers."},
]
SLOW_MARKER = "Python function that adds"
# (English text, language name) -> translation, each written with the masks where the English has its segments.
HAND_MADE = {
    (ROWS[0]["instruction"], "Swahili"): "Eleza kwa nini anga ni la buluu siku isiyo na mawingu.",
    (ROWS[0]["instruction"], "Arabic"): "اشرح لماذا تكون السماء زرقاء في يوم صاف.",
    (ROWS[0]["instruction"], "Chinese (Simplified)"): "解释为什么晴天的天空是蓝色的。",
    (ROWS[0]["output"], "Swahili"): "Mwanga wa jua hutawanywa na hewa, na mwanga wa buluu hutawanywa zaidi, kwa hivyo "
                                    "anga lote linaonekana la buluu.",
    (ROWS[0]["output"], "Arabic"): "ينتشر ضوء الشمس في الهواء، والضوء الأزرق هو الأكثر انتشارا، لذلك تبدو السماء كلها "
                                   "زرقاء.",
    (ROWS[0]["output"], "Chinese (Simplified)"): "阳光被空气散射，蓝光散射得最多，所以整个天空看起来是蓝色的。",
    (ROWS[1]["instruction"], "Swahili"): "Andika kitendakazi cha Python kinachojumlisha namba mbili.",
    (ROWS[1]["instruction"], "Arabic"): "اكتب دالة بلغة بايثون تجمع عددين.",
    (ROWS[1]["instruction"], "Chinese (Simplified)"): "编写一个将两个数字相加的 Python 函数。",
    (ROWS[1]["output"], "Swahili"): "Hiki ndicho kitendakazi:\n<x0/>\nKinarudisha jumla ya namba zote mbili.",
    (ROWS[1]["output"], "Arabic"): "هذه هي الدالة:\n<x0/>\nتعيد مجموع العددين كليهما.",
    (ROWS[1]["output"], "Chinese (Simplified)"): "这是这个函数：\n<x0/>\n它返回两个数字的和。",
}
_PROMPT = re.compile(r"from (?P<source>.+?) to (?P<target>.+?)\. .*?\n\n(?P<text>.*)\Z", re.DOTALL)


class FakeTranslator(FakeOpenAI):
    def __init__(self) -> None:
        super().__init__()
        self.wrong: set[str] = set()  # English texts answered in English (a copy), in every language
        self.forward = {(protect(english)[0], language): translated
                        for (english, language), translated in HAND_MADE.items()}
        self.back = {translated: masked for (masked, _), translated in self.forward.items()}
        fake = self
        base = fake_openai._handler_for(self)

        class Handler(base):
            def _respond(self, behaviour: str, body: dict) -> None:
                if behaviour == "ok":
                    answer = fake.translate(body["messages"][-1]["content"])
                    payload = {"id": "cmpl-fake", "object": "chat.completion", "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}]}
                    self._send(200, json.dumps(payload).encode())
                else:
                    super()._respond(behaviour, body)

        self._server.server_close()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def translate(self, prompt: str) -> str:
        match = _PROMPT.search(prompt)
        if match is None:
            return prompt
        text, target = match.group("text"), match.group("target")
        if target == "English":
            return self.back.get(text, text)
        if any(protect(english)[0] == text for english in self.wrong):
            return text
        return self.forward.get((text, target), text)
