"""The web UI in Chromium: the customer's and the admin's journeys, live updates, error messages.

Screenshots of the main views go to var/screenshots/ (test artefacts).
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from ebike.tests.browser.conftest import PASSWORD, Person, unique

pytestmark = pytest.mark.browser

CREATE_VEHICLE = """mutation($type: VehicleType!, $x: Float!, $y: Float!) {
  createVehicle(input: {type: $type, position: {x: $x, y: $y}}) { id } }"""
CREATE_STATION = """mutation($name: String!, $x: Float!, $y: Float!) {
  createStation(input: {name: $name, position: {x: $x, y: $y}}) { id } }"""


def click_map(page: Page, x: float, y: float) -> None:
    """Click the city map at map position (x, y)."""
    screen = page.evaluate(
        """([x, y]) => {
            const svg = document.getElementById("city-map");
            const point = svg.createSVGPoint();
            point.x = x; point.y = y;
            const at = point.matrixTransform(svg.getScreenCTM());
            return [at.x, at.y];
        }""", [x, y])
    page.mouse.click(screen[0], screen[1])


def marker_position(page: Page, selector: str) -> tuple[float, float]:
    marker = page.locator(selector)
    return float(marker.get_attribute("data-x") or "nan"), float(marker.get_attribute("data-y") or "nan")


def mark_document(page: Page) -> None:
    """Tag the loaded document; ``still_same_document`` fails if the page was reloaded since."""
    page.evaluate("window.__sameDocument = true")


def still_same_document(page: Page) -> bool:
    return bool(page.evaluate("window.__sameDocument === true"))


def vehicle(admin: Person, kind: str, x: float, y: float) -> str:
    return str(admin.gql(CREATE_VEHICLE, {"type": kind, "x": x, "y": y})["createVehicle"]["id"])


def test_admin_creates_and_deletes_stations_and_vehicles_from_the_map(admin: Person) -> None:
    page = admin.page
    page.goto("/admin/fleet")
    station_form = page.locator("#station-form")

    # the API's message appears next to the field that caused it
    station_form.get_by_role("button", name="Create station").click()
    expect(page.locator("#station-name-error")).to_have_text("validation failed")
    expect(page.get_by_label("Name")).to_have_attribute("aria-invalid", "true")

    # a click on the map fills the position in; the new station appears without a reload
    mark_document(page)
    page.get_by_label("Name").fill("North Gate")
    click_map(page, 30, 40)
    assert float(station_form.get_by_label("x").input_value()) == pytest.approx(30, abs=0.3)
    assert float(station_form.get_by_label("y").input_value()) == pytest.approx(40, abs=0.3)
    station_form.get_by_role("button", name="Create station").click()
    expect(page.locator("#stations tr", has_text="North Gate")).to_have_count(1)
    expect(page.locator("#city-map .station title", has_text="North Gate")).to_have_count(1)
    expect(page.get_by_label("Name")).not_to_have_attribute("aria-invalid", "true")

    vehicle_form = page.locator("#vehicle-form")
    vehicle_form.get_by_label("Type").select_option("EBIKE")
    click_map(page, 70, 25)
    vehicle_form.get_by_role("button", name="Create vehicle").click()
    row = page.locator("#vehicles tbody tr", has_text="EBIKE").first
    expect(row).to_be_visible()
    vehicle_id = row.get_attribute("data-vehicle-id")
    marker = page.locator(f'#city-map .vehicle[data-id="{vehicle_id}"]')
    expect(marker).to_have_attribute("data-status", "AVAILABLE")
    assert marker_position(page, f'#city-map .vehicle[data-id="{vehicle_id}"]') == pytest.approx((70, 25), abs=0.3)
    assert still_same_document(page)
    admin.screenshot("admin-fleet")

    row.get_by_role("button", name="Delete").click()
    expect(page.locator(f'tr[data-vehicle-id="{vehicle_id}"]')).to_have_count(0)
    expect(marker).to_have_count(0)

    page.reload()  # what the server renders agrees
    expect(page.locator("#stations tr", has_text="North Gate")).to_have_count(1)
    expect(page.locator(f'tr[data-vehicle-id="{vehicle_id}"]')).to_have_count(0)


def test_customer_adds_credit_and_the_admin_confirms_it_live(admin: Person, customer_factory: Any) -> None:
    customer = customer_factory()
    admin.page.goto("/admin/payments")
    mark_document(admin.page)

    page = customer.page
    page.goto("/wallet")
    expect(page.locator('[data-live="balance"]')).to_have_text("0.00 €")
    amount = page.get_by_label("Amount in euros")
    amount.fill("0")
    page.get_by_role("button", name="Add credit").click()
    expect(page.locator("#credit-amount-error")).to_have_text("validation failed")

    amount.fill("12.50")
    page.get_by_role("button", name="Add credit").click()
    pending = page.locator("#transactions tbody tr", has_text="12.50 €")
    expect(pending).to_contain_text("pending")
    expect(page.locator('[data-live="balance"]')).to_have_text("0.00 €")
    mark_document(page)

    # the pending payment reaches the admin's open page, pushed by the server
    row = admin.page.locator("#payments tbody tr", has_text="12.50 €")
    expect(row).to_be_visible()
    admin.screenshot("admin-payments")
    row.get_by_role("button", name="Confirm").click()
    expect(row).to_have_count(0)
    assert still_same_document(admin.page)

    # and the customer's balance and payment status change on their open page
    expect(page.locator('[data-live="balance"]')).to_have_text("12.50 €")
    expect(pending).to_contain_text("confirmed")
    assert still_same_document(page)
    customer.screenshot("customer-wallet")

    admin.page.goto("/admin/customers")
    expect(admin.page.locator("#customers tbody tr", has_text="12.50 €")).to_have_count(1)
    admin.page.goto("/admin/users")
    expect(admin.page.locator("#users")).to_contain_text("admin1")


def select_vehicle(page: Page, vehicle_id: str) -> None:
    """Click a vehicle on the map once the page is live (the first pushed snapshot redraws the map,
    and a click on the marker it replaced would be lost); its card opens."""
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    page.locator(f'#city-map .vehicle[data-id="{vehicle_id}"]').click()
    expect(page.locator("#selected")).to_be_visible()


def test_renting_without_credit_shows_the_api_error_next_to_the_button(admin: Person, customer_factory: Any) -> None:
    bike = vehicle(admin, "BIKE", 45, 60)
    customer = customer_factory()
    page = customer.page
    page.goto("/ride")
    select_vehicle(page, bike)
    selected = page.locator("#selected")
    selected.get_by_role("button", name="Rent this vehicle").click()
    expect(selected.locator("output.error")).to_contain_text("does not have enough credit balance")
    expect(page.locator("#rental")).to_contain_text("No active rental")


def test_customer_rents_on_the_map_sees_the_cost_rise_and_stops(admin: Person, customer_factory: Any) -> None:
    bike = vehicle(admin, "BIKE", 60, 70)
    # 0.85 €: the unlocking fee (0.80 €) fits, two minutes (0.05 € each) take the balance below zero
    customer = customer_factory(credit=85, admin=admin)
    page = customer.page
    page.goto("/ride")
    expect(page.locator('[data-live="balance"]').first).to_have_text("0.85 €")
    select_vehicle(page, bike)
    page.locator("#selected").get_by_role("button", name="Rent this vehicle").click()

    cost = page.locator('[data-live="rental-cost"]')
    expect(cost).to_be_visible()
    mark_document(page)
    expect(cost).to_have_text(re.compile(r"0\.8[05] €"))  # the unlocking fee, maybe a minute already
    first = int(cost.inner_text().replace(".", "").removesuffix(" €"))
    expect(cost).to_have_text(f"0.{first + 5} €")  # a platform minute (3 s) later, pushed
    balance = page.locator('[data-live="balance"]').first
    expect(balance).to_have_text("-0.05 €")
    expect(balance).to_have_class("money negative")
    expect(balance).to_have_css("color", "rgb(198, 40, 40)")
    assert still_same_document(page)
    customer.screenshot("customer-ride-rental")

    page.locator("#rental").get_by_role("button", name="Stop the rental").click()
    expect(page.locator("#rental")).to_contain_text("No active rental")
    expect(page.get_by_role("table").last).to_contain_text("€")


def test_called_abike_comes_to_the_customer_live_without_polling(admin: Person, customer_factory: Any) -> None:
    admin.gql(CREATE_STATION, {"name": "Harbour", "x": 95, "y": 95})
    abike = vehicle(admin, "ABIKE", 90, 20)  # about 90 units away: 4.5 s of wall time
    customer = customer_factory(credit=500, admin=admin)
    page = customer.page
    pushed: list[str] = []  # frames the server sent over the page's WebSocket
    page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: pushed.append(str(frame))))
    page.goto("/ride")
    me = "#city-map #me"

    click_map(page, 20, 80)  # set own position by clicking the map
    page.wait_for_function("Number(document.querySelector('#city-map #me').dataset.x) > 0")
    here = marker_position(page, me)
    assert here == pytest.approx((20, 80), abs=0.3)

    graphql_posts: list[str] = []
    page.on("request", lambda request: graphql_posts.append(request.url) if "/graphql" in request.url else None)
    mark_document(page)
    with page.expect_response(lambda response: "/graphql" in response.url):
        page.get_by_role("button", name="Call an a-bike here").click()
    expect(page.locator("#abike-status")).to_contain_text("coming")
    graphql_posts.clear()
    pushed.clear()

    marker = f'#city-map .vehicle[data-id="{abike}"]'
    start = marker_position(page, marker)
    time.sleep(1.0)
    moved = marker_position(page, marker)
    assert moved != start, "the a-bike did not move"
    distance = lambda p: ((p[0] - here[0]) ** 2 + (p[1] - here[1]) ** 2) ** 0.5  # noqa: E731
    assert distance(moved) < distance(start)

    # the admin sees it coming too, coloured by its status
    admin.page.goto("/admin")
    expect(admin.page.locator(marker)).to_have_attribute("data-status", "COMING")
    admin.screenshot("admin-map")

    expect(page.locator(marker)).to_have_attribute("data-status", "WAITING", timeout=15_000)
    assert marker_position(page, marker) == pytest.approx(here, abs=0.01)
    expect(page.locator("#abike-status")).to_contain_text("waiting")
    assert graphql_posts == [], f"the page polled: {graphql_posts}"
    assert len(pushed) > 3, "no updates were pushed over the WebSocket"
    assert still_same_document(page)
    customer.screenshot("customer-ride-abike")

    page.get_by_role("button", name="Rent my a-bike").click()
    expect(page.locator('[data-live="rental-cost"]')).to_be_visible()
    page.locator("#rental").get_by_role("button", name="Stop the rental").click()
    expect(page.locator("#rental")).to_contain_text("No active rental")


def test_signing_in_and_up_shows_the_api_errors_next_to_the_fields(admin: Person, customer_factory: Any) -> None:
    page = customer_factory().page
    username = page.locator(".who").inner_text().split()[0]
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    page.goto("/ride")
    page.wait_for_url("**/login")  # signed out: the pages send one to sign in

    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("wrongpass1")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator('form[data-op="login"] output[data-error-for="action"]')).to_have_text(
        "invalid username or password")

    page.goto("/signup")
    signup = page.locator('form[data-op="registerCustomer"]')
    signup.get_by_label("Username").fill(username)
    signup.get_by_label("Password").fill(PASSWORD)
    signup.get_by_role("button", name="Sign up").click()
    expect(page.locator("#signup-username-error")).to_have_text("user already exists")

    # an administrator exists, so an anonymous visitor cannot become one
    bootstrap = page.locator('form[data-op="registerAdmin"]')
    bootstrap.get_by_label("Username").fill(unique("intruder"))
    bootstrap.get_by_label("Password").fill(PASSWORD)
    bootstrap.get_by_role("button", name="Create the administrator").click()
    expect(bootstrap.locator('output[data-error-for="action"]')).to_have_text("Not authorized")

    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ride")
