"""Status's query API (API_PORT, which only the webapp may reach): a customer's orders, one order."""

import re

from flask import Blueprint, jsonify, request

from kafka_common.shop.ids import is_customer_id, is_order_id
from pizza_status.read_model import ReadModel

READ_YOUR_WRITES_WAIT_S = 3.0
POSITION = re.compile(r"^(\d{1,6}):(\d{1,19})$")


def query_api(model: ReadModel) -> Blueprint:
    api = Blueprint("orders", __name__)

    def wait_for_position():
        """?wait_for=partition:offset of the caller's pizza-ordered record: read-your-writes."""
        raw = request.args.get("wait_for")
        if raw is None:
            return None
        match = POSITION.match(raw)
        if match is None:
            return jsonify(error="wait_for must be <partition>:<offset>"), 400
        model.wait_for(int(match[1]), int(match[2]), READ_YOUR_WRITES_WAIT_S)
        return None

    @api.get("/api/orders")
    def list_orders():
        customer_id = request.args.get("customer_id", "")
        if not is_customer_id(customer_id):
            return jsonify(error="customer_id must be a hex string"), 400
        return wait_for_position() or jsonify(orders=model.orders_of(customer_id))

    @api.get("/api/orders/<order_id>")
    def get_order(order_id: str):
        if not is_order_id(order_id):
            return jsonify(error="unknown order"), 404
        problem = wait_for_position()
        if problem:
            return problem
        order = model.order(order_id)
        if order is None:
            return jsonify(error="unknown order"), 404
        return jsonify(order)

    return api
