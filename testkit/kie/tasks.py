"""One emulated KIE task: its lifecycle data, recordInfo snapshots and result files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from kie_client.catalog import Kind, spec_for_kie_model

TERMINAL = frozenset({"success", "fail"})


def kie_cost(kie_model: str, input: dict[str, Any]) -> Decimal:
    """KIE's own credit price per task: the `credits` the catalog's data files keep beside every
    ⭐ price (kie-market-2026.md), with the same tiers, factors and seconds; per audio second, the
    longest audio. Bytedance V1 Pro is unpublished: a GUESS of 6 credits per second at 480p/720p,
    twice that at 1080p."""
    spec = spec_for_kie_model(kie_model)
    rule = spec.rule
    options = {o.name: input.get(o.kie_field, o.default) for o in spec.options}
    unit = rule.unit(options)[1]
    if unit is not None:
        factor = Fraction(1)
        for pf in rule.factors:
            if options.get(pf.option) == pf.value:
                factor *= pf.multiplier
        seconds = spec.seconds(options) if rule.per_second != "audio" else spec.seconds(options, None)
        total = unit * factor * seconds
        return Decimal(total.numerator) / Decimal(total.denominator)
    duration = 10 if input.get("duration") == "10" else 5
    if kie_model.startswith("seedream/4.5"):
        return Decimal("6.5")
    if kie_model.startswith("flux-2/pro"):
        return Decimal(7 if input.get("resolution") == "2K" else 5)
    if kie_model.startswith("kling-2.6"):
        return Decimal(55) * (2 if duration == 10 else 1) * (2 if input.get("sound") is True else 1)
    if kie_model.startswith("bytedance/v1-pro"):
        return Decimal(6 * duration) * (2 if input.get("resolution") == "1080p" else 1)
    return Decimal(10)


def number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


@dataclass
class ResultFile:
    name: str
    content_type: str
    width: int
    height: int
    duration_s: int = 0


@dataclass
class EmulatedTask:
    task_id: str
    model: str
    input: dict[str, Any]
    callback_url: str | None
    create_time_ms: int
    cost: Decimal
    fail: bool = False
    fail_code: str | None = None
    fail_msg: str | None = None
    state: str = "waiting"
    complete_time_ms: int | None = None
    update_time_ms: int | None = None
    files: list[ResultFile] = field(default_factory=list)
    result_base: str = ""
    large_result_bytes: int = 0
    snapshots: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    # The API shape the task was created through: "market" (jobs) or "veo" (/api/v1/veo/*),
    # which decides how recordInfo and the callback show it.
    api: str = "market"
    _cache: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def kind(self) -> Kind:
        return spec_for_kie_model(self.model).kind

    @property
    def result_urls(self) -> list[str]:
        # Follow-up files (Veo's 1080p/4K) are served but are not the task's results.
        return [f"{self.result_base}/{self.task_id}/{f.name}" for f in self.files
                if f.name[0].isdigit()]

    @property
    def is_final(self) -> bool:
        return self.state in TERMINAL

    def param(self) -> str:
        # Live KIE double-encodes `input` and lists callBackUrl only when one was sent.
        outer: dict[str, Any] = {}
        if self.callback_url:
            outer["callBackUrl"] = self.callback_url
        outer["input"] = json.dumps(self.input, ensure_ascii=False)
        outer["model"] = self.model
        return json.dumps(outer, ensure_ascii=False)

    def veo_record(self) -> dict[str, Any]:
        """Veo record-info `data`: successFlag 0 generating / 1 success / 3 generation failed."""
        flag = {"success": 1, "fail": 3}.get(self.state, 0)
        param = {"model": self.model, **self.input}
        if self.callback_url:
            param["callBackUrl"] = self.callback_url
        code = self.fail_code if self.state == "fail" else None
        return {
            "taskId": self.task_id,
            "paramJson": json.dumps(param, ensure_ascii=False),
            "completeTime": self.complete_time_ms if self.is_final else None,
            "response": {
                "taskId": self.task_id,
                "resultUrls": self.result_urls,
                "originUrls": [] if self.input.get("aspect_ratio") in (None, "16:9") else self.result_urls,
                "resolution": self.input.get("resolution", "720p"),
            } if self.state == "success" else None,
            "successFlag": flag,
            "errorCode": int(code) if code is not None and str(code).isdigit() else code,
            "errorMessage": self.fail_msg if self.state == "fail" else None,
            "createTime": self.create_time_ms,
            "fallbackFlag": False,
        }

    def record(self, *, include_update_time: bool, include_credits_consumed: bool) -> dict[str, Any]:
        """recordInfo `data` for the current state, shaped like the live captures (Veo tasks:
        record-info's own shape)."""
        if self.api == "veo":
            return self.veo_record()
        done = self.is_final
        data: dict[str, Any] = {
            "taskId": self.task_id,
            "model": self.model,
            "state": self.state,
            "param": self.param(),
            "resultJson": json.dumps({"resultUrls": self.result_urls}) if self.state == "success" else "",
            "failCode": self.fail_code if self.state == "fail" else None,
            "failMsg": self.fail_msg if self.state == "fail" else None,
            "costTime": round((self.complete_time_ms - self.create_time_ms) / 1000) if done else None,
            "completeTime": self.complete_time_ms if done else None,
            "createTime": self.create_time_ms,
        }
        if include_update_time:
            data["updateTime"] = self.update_time_ms or self.create_time_ms
        if self.state == "success" and include_credits_consumed:
            data["creditsConsumed"] = number(self.cost)
        return data

    def file(self, name: str) -> ResultFile | None:
        return next((f for f in self.files if f.name == name), None)
