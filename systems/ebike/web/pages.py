"""The page handlers: one GraphQL query per page, rendered with Jinja2.

Everything a page shows comes from one query sent with the viewer's cookie, ``auth`` included,
so the page knows who is looking and sends a visitor with the wrong role (or none) elsewhere.
Forms and live updates are the JavaScript's job (``static/js``); the server only renders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ebike.contracts.fees import PER_MINUTE_FEE, UNLOCK_FEE
from ebike.web import format as fmt
from ebike.web.api import Api, ApiError, Result

HERE = Path(__file__).parent
HOME = {"CUSTOMER": "/ride", "ADMIN": "/admin"}
PAYMENT_FILTERS = ("PENDING", "CONFIRMED", "REJECTED", "ALL")

AUTH = "auth { id username role }"
POINT = "{ x y }"
VEHICLE = f"id type position {POINT} battery available status target {POINT}"
STATIONS = f"stations {{ id name position {POINT} }}"

RIDE = f"""query RidePage {{
  creditBalance position {POINT} activeRental {{ id start cost }}
  availableVehicles {{ {VEHICLE} }} {STATIONS} pastRentals {{ id start end cost }}
}}"""
WALLET = """query WalletPage {
  creditBalance
  transactions {
    __typename
    ... on Payment { id amount status createdAt }
    ... on Expense { id amount createdAt rentalId }
  }
}"""
CUSTOMERS = (f"customers {{ id name position {POINT} creditBalance lastLogin "
             "activeRental { id vehicleId vehicleType start cost } }")
ADMIN_MAP = f"""query AdminMapPage {{
  {STATIONS} vehicles {{ {VEHICLE} activeRental {{ id customerId cost }} }} {CUSTOMERS}
}}"""
ADMIN_PAYMENTS = """query AdminPaymentsPage($status: PaymentStatus) {
  payments(status: $status) { id amount status createdAt customer { id name } }
  customers { id name }
}"""
ADMIN_CUSTOMERS = f"query AdminCustomersPage {{ {CUSTOMERS} }}"
ADMIN_USERS = "query AdminUsersPage { users { id username role lastLogin } }"
ADMIN_FLEET = f"""query AdminFleetPage {{
  {STATIONS} vehicles {{ {VEHICLE} activeRental {{ id customerId cost }} }}
}}"""
WHO = f"query Who {{ {AUTH} }}"

Extra = Callable[[Request, dict[str, Any]], dict[str, Any]]


def _points(*groups: Iterable[dict[str, Any]]) -> list[dict[str, Any] | None]:
    points: list[dict[str, Any] | None] = []
    for group in groups:
        for item in group:
            points += [item.get("position"), item.get("target")]
    return points


def city(stations: list[dict[str, Any]] | None = None, vehicles: list[dict[str, Any]] | None = None,
         customers: list[dict[str, Any]] | None = None, me: dict[str, Any] | None = None,
         click: str = "none") -> dict[str, Any]:
    """What the map template draws; ``click`` says what a click on the map does (see map.js)."""
    stations, vehicles, customers = stations or [], vehicles or [], customers or []
    extent = fmt.extent([*_points(stations, vehicles, customers), me])
    return {"stations": stations, "vehicles": vehicles, "customers": customers, "me": me,
            "extent": extent, "click": click}


class Pages:
    """The handlers, sharing one template environment."""

    def __init__(self, templates: Jinja2Templates) -> None:
        self.templates = templates

    # -- plumbing ---------------------------------------------------------------------------------
    def _render(self, request: Request, api: Api, template: str, context: dict[str, Any]) -> Response:
        response = self.templates.TemplateResponse(request, template, context)
        # pages show one person's data: never from a cache (the back button after signing out)
        response.headers["cache-control"] = "no-store"
        return self._pass_cookies(api, response)

    @staticmethod
    def _pass_cookies(api: Api, response: Response) -> Response:
        for cookie in api.set_cookies:
            response.headers.append("set-cookie", cookie)
        return response

    def _redirect(self, api: Api, url: str) -> Response:
        return self._pass_cookies(api, RedirectResponse(url, status_code=303))

    async def _page(self, request: Request, role: str, template: str, document: str,
                    variables: dict[str, Any] | None = None, extra: Extra | None = None) -> Response:
        # Who is asking comes first: a page query with fields of another role fails as a whole.
        api = Api(request)
        who = await api.run(WHO)
        user = who.data.get("auth")
        if not user:
            if who.errors:
                return self._failure(request, api, who.errors)
            return self._redirect(api, "/login")
        if user["role"] != role:
            return self._redirect(api, HOME.get(user["role"], "/login"))
        result = await api.run(document, variables)
        if result.unauthenticated:  # signed out between the two queries
            return self._redirect(api, "/login")
        data = result.data
        context: dict[str, Any] = {"user": user, "data": data, "errors": _messages(result)}
        if extra:
            context |= extra(request, data)
        return self._render(request, api, template, context)

    def _failure(self, request: Request, api: Api, errors: list[ApiError]) -> Response:
        response = self._render(request, api, "failure.html", {"user": None, "errors": [e.message for e in errors]})
        response.status_code = 502
        return response

    # -- anyone -----------------------------------------------------------------------------------
    async def home(self, request: Request) -> Response:
        api = Api(request)
        user = (await api.run(WHO)).data.get("auth")
        return self._redirect(api, HOME.get(user["role"], "/login") if user else "/login")

    async def login(self, request: Request) -> Response:
        return await self._anonymous(request, "login.html")

    async def signup(self, request: Request) -> Response:
        return await self._anonymous(request, "signup.html")

    async def _anonymous(self, request: Request, template: str) -> Response:
        api = Api(request)
        result = await api.run(WHO)
        user = result.data.get("auth")
        if user:
            return self._redirect(api, HOME.get(user["role"], "/"))
        return self._render(request, api, template, {"user": None, "errors": _messages(result)})

    # -- customers --------------------------------------------------------------------------------
    async def ride(self, request: Request) -> Response:
        def extra(request: Request, data: dict[str, Any]) -> dict[str, Any]:
            return {"city": city(data.get("stations"), data.get("availableVehicles"), me=data.get("position"),
                                 click="position")}
        return await self._page(request, "CUSTOMER", "ride.html", RIDE, extra=extra)

    async def wallet(self, request: Request) -> Response:
        return await self._page(request, "CUSTOMER", "wallet.html", WALLET)

    # -- admins -----------------------------------------------------------------------------------
    async def admin_map(self, request: Request) -> Response:
        def extra(request: Request, data: dict[str, Any]) -> dict[str, Any]:
            return {"city": city(data.get("stations"), data.get("vehicles"), data.get("customers"))}
        return await self._page(request, "ADMIN", "admin/map.html", ADMIN_MAP, extra=extra)

    async def admin_payments(self, request: Request) -> Response:
        wanted = request.query_params.get("status", "PENDING").upper()
        wanted = wanted if wanted in PAYMENT_FILTERS else "PENDING"
        variables = {"status": None if wanted == "ALL" else wanted}
        return await self._page(request, "ADMIN", "admin/payments.html", ADMIN_PAYMENTS, variables,
                                extra=lambda request, data: {
                                    "filter": wanted, "filters": PAYMENT_FILTERS,
                                    "names": {c["id"]: c["name"] for c in data.get("customers") or []}})

    async def admin_customers(self, request: Request) -> Response:
        return await self._page(request, "ADMIN", "admin/customers.html", ADMIN_CUSTOMERS)

    async def admin_users(self, request: Request) -> Response:
        return await self._page(request, "ADMIN", "admin/users.html", ADMIN_USERS)

    async def admin_fleet(self, request: Request) -> Response:
        def extra(request: Request, data: dict[str, Any]) -> dict[str, Any]:
            return {"city": city(data.get("stations"), data.get("vehicles"), click="fill")}
        return await self._page(request, "ADMIN", "admin/fleet.html", ADMIN_FLEET, extra=extra)


def _messages(result: Result) -> list[str]:
    """Error texts worth showing on a page (a field the viewer may not see is not news)."""
    return [e.message for e in result.errors if e.code not in {"UNAUTHENTICATED", "FORBIDDEN"}]


def templates() -> Jinja2Templates:
    """The template environment, with the formatting filters the pages use."""
    environment = Jinja2Templates(directory=HERE / "templates")
    environment.env.filters |= {"euros": fmt.euros, "instant": fmt.instant, "number": fmt.number,
                                "plain": fmt.plain, "percent": fmt.percent}
    environment.env.globals["fees"] = {"unlock": UNLOCK_FEE, "minute": PER_MINUTE_FEE}
    environment.env.trim_blocks = True
    environment.env.lstrip_blocks = True
    return environment


def routes() -> list[BaseRoute]:
    """Every page, and the static files (CSS, JavaScript) under ``/static``."""
    pages = Pages(templates())
    return [
        Route("/", pages.home, name="home"),
        Route("/login", pages.login, name="login"),
        Route("/signup", pages.signup, name="signup"),
        Route("/ride", pages.ride, name="ride"),
        Route("/wallet", pages.wallet, name="wallet"),
        Route("/admin", pages.admin_map, name="admin"),
        Route("/admin/payments", pages.admin_payments, name="admin-payments"),
        Route("/admin/customers", pages.admin_customers, name="admin-customers"),
        Route("/admin/users", pages.admin_users, name="admin-users"),
        Route("/admin/fleet", pages.admin_fleet, name="admin-fleet"),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
