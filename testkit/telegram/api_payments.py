"""Bot-side methods for Telegram Stars payments."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from .errors import QUERY_TOO_OLD, bad_request
from .limits import check_invoice, check_reply_markup

if TYPE_CHECKING:
    from .server import FakeTelegram

_INVOICE_KEYS = ("title", "description", "payload", "currency", "prices", "start_parameter",
                 "subscription_period")


def invoice_object(invoice: dict[str, Any]) -> dict[str, Any]:
    return {"title": invoice["title"], "description": invoice["description"],
            "start_parameter": invoice.get("start_parameter", ""), "currency": invoice["currency"],
            "total_amount": sum(p["amount"] for p in invoice["prices"])}


async def send_invoice(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    check_invoice(params)
    check_reply_markup(params.get("reply_markup"))
    chat = fake.chat(params["chat_id"], sending=True)
    invoice = {k: params[k] for k in _INVOICE_KEYS if k in params}
    content: dict[str, Any] = {"invoice": invoice_object(invoice), **fake.reply_to(chat, params)}
    if params.get("reply_markup"):
        content["reply_markup"] = params["reply_markup"]
    return fake.post_message(chat, content, outgoing=True, invoice=invoice).message


async def create_invoice_link(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    check_invoice(params)
    link = f"https://t.me/${secrets.token_urlsafe(12)}"
    fake.invoice_links[link] = {k: params[k] for k in _INVOICE_KEYS if k in params}
    return link


async def answer_pre_checkout_query(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    if not params["ok"] and not params.get("error_message"):
        raise bad_request("error_message is required when ok is False")
    query = fake.precheckout_queries.get(params["pre_checkout_query_id"])
    if query is None or query.answer is not None or fake.clock() - query.created > fake.precheckout_timeout:
        raise bad_request(QUERY_TOO_OLD.removeprefix("Bad Request: "))
    query.answer = {"ok": params["ok"], "error_message": params.get("error_message")}
    fake.notifier.notify()
    return True


async def refund_star_payment(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    payment = fake.payments.get(params["telegram_payment_charge_id"])
    if payment is None or payment.user_id != params["user_id"]:
        raise bad_request("CHARGE_NOT_FOUND")
    if payment.refunded:
        raise bad_request("CHARGE_ALREADY_REFUNDED")
    payment.refunded = True
    chat = fake.chat(payment.user_id)
    user = chat.user.as_user()
    fake.star_transactions.append({
        "id": payment.charge_id, "amount": payment.amount, "date": fake.now(),
        "receiver": {"type": "user", "transaction_type": "invoice_payment", "user": user,
                     "invoice_payload": payment.payload},
    })
    refunded = {"currency": "XTR", "total_amount": payment.amount, "invoice_payload": payment.payload,
                "telegram_payment_charge_id": payment.charge_id}
    stored = fake.post_message(chat, {"refunded_payment": refunded}, outgoing=False)
    fake.emit({"message": stored.message})
    return True


async def get_star_transactions(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    limit = params.get("limit", 100)
    if not 1 <= limit <= 100:
        raise bad_request("limit must be 1-100")
    offset = max(params.get("offset", 0), 0)
    return {"transactions": fake.star_transactions[offset: offset + limit]}


HANDLERS = {
    "sendInvoice": send_invoice,
    "createInvoiceLink": create_invoice_link,
    "answerPreCheckoutQuery": answer_pre_checkout_query,
    "refundStarPayment": refund_star_payment,
    "getStarTransactions": get_star_transactions,
}
