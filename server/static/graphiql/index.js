// Starts GraphiQL on the page served by server/graphiql.py. A file, not an inline script, so
// the page's Content-Security-Policy can stay at script-src 'self'.
"use strict";

(function () {
  // GraphiQL's dialogs add a <style> element stamped with this nonce (see server/graphiql.py).
  window.__webpack_nonce__ = document.currentScript.nonce;

  const WELCOME = `# GraphiQL for the strategy generator: Ctrl-Enter runs the operation.
#
# 1. Register (or log in) and copy the token:
#
#    mutation { register(email: "me@example.com", password: "a long passphrase") { token } }
#
# 2. In the Headers pane below, send it with every request:
#
#    {"Authorization": "Bearer <token>"}
#
# 3. Then, for example:

query Me {
  me {
    email
    isStaff
  }
  sampleDatasets
}
`;

  // ?q=... (and ?variables=...) open the page with that operation, so links can share one.
  const params = new URLSearchParams(window.location.search);
  const endpoint = window.location.origin + window.location.pathname;

  function webSocketUrl(httpUrl) {
    const url = new URL(httpUrl);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.hash = "";
    return url.toString();
  }

  function updateUrl(key, value) {
    if (value) {
      params.set(key, value);
    } else {
      params.delete(key);
    }
    const search = params.toString();
    history.replaceState(null, "", search ? "?" + search : window.location.pathname);
  }

  const fetcher = GraphiQL.createFetcher({
    url: endpoint,
    subscriptionUrl: webSocketUrl(endpoint),
  });

  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: WELCOME,
      query: params.get("q") || undefined,
      variables: params.get("variables") || undefined,
      onEditQuery: function (query) {
        updateUrl("q", query);
      },
      onEditVariables: function (variables) {
        updateUrl("variables", variables);
      },
      defaultEditorToolsVisibility: "headers",
      isHeadersEditorEnabled: true,
      inputValueDeprecation: true,
    }),
  );
})();
