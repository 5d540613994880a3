"""ebike's gateway: the GraphQL API of spec section 4 (plus section 0), sessions, live updates.

    schema/     the SDL, one file per area (schema first)
    resolvers   queries and mutations: role check → service call → DTO mapping
    live        subscriptions, fed by the platform's live feed
    session     the caller's session and the shared role guard
    app         the Gateway: settings, keys, limits, upstream policies, routes
    web         what ``/`` serves until the web UI plugs in
    cli         ``junction ebike create-admin``
"""
