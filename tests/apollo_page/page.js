// Apollo Client as a single-page app on another origin would use it: HttpLink behind
// the persisted-query link (hashes first, queries over GET), graphql-ws for subscriptions.
// tests/test_apollo_browser.py bundles this with esbuild and calls window.scenario.*.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql, split } from "@apollo/client/core";
import { setContext } from "@apollo/client/link/context";
import { createPersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition } from "@apollo/client/utilities";
import { createClient } from "graphql-ws";

async function sha256(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function makeClient(api, getToken) {
  const auth = setContext((_, { headers }) => {
    const token = getToken();
    return { headers: { ...headers, ...(token ? { Authorization: `Bearer ${token}` } : {}) } };
  });
  const persisted = createPersistedQueryLink({ sha256, useGETForHashedQueries: true });
  const http = ApolloLink.from([auth, persisted, new HttpLink({ uri: `${api}/graphql` })]);
  const ws = new GraphQLWsLink(
    createClient({
      url: `${api.replace(/^http/, "ws")}/graphql`,
      connectionParams: () => ({ Authorization: `Bearer ${getToken()}` }),
    }),
  );
  const isSubscription = ({ query }) => {
    const definition = getMainDefinition(query);
    return definition.kind === "OperationDefinition" && definition.operation === "subscription";
  };
  return new ApolloClient({ link: split(isSubscription, ws, http), cache: new InMemoryCache() });
}

function describe(error) {
  return {
    codes: (error.graphQLErrors || []).map((e) => e.extensions && e.extensions.code),
    messages: (error.graphQLErrors || []).map((e) => e.message),
    network: error.networkError ? String(error.networkError) : null,
  };
}

const LOGIN = gql`
  mutation Login($email: String!, $password: String!) {
    login(email: $email, password: $password) { token user { email } }
  }
`;
const ME = gql`query Me { me { email } }`;
const CHECK = gql`
  mutation Check($code: String!) { validateCode(code: $code, smokeTest: false) { valid } }
`;
const PROGRESS = gql`
  subscription Progress($input: GenerateStrategyInput!) {
    generateStrategyProgress(input: $input) { stage result { strategy { name } } }
  }
`;
const CODE = [
  "def execute_strategy(market_data, strategy_params):",
  '    """Holds, always."""',
  '    return {"action": "hold", "confidence": 0.5, "reason": "flat", "metadata": {}}',
  "",
].join("\n");

async function everything({ api, email, password }) {
  let token = null;
  const client = makeClient(api, () => token);
  const out = {};
  const login = await client.mutate({ mutation: LOGIN, variables: { email, password } });
  token = login.data.login.token;
  out.login = login.data.login.user.email;
  out.me = [];
  for (let i = 0; i < 2; i++) {
    const me = await client.query({ query: ME, fetchPolicy: "network-only" });
    out.me.push(me.data.me.email);
  }
  const checked = await client.mutate({ mutation: CHECK, variables: { code: CODE } });
  out.valid = checked.data.validateCode.valid;
  out.stages = await new Promise((resolve, reject) => {
    const stages = [];
    client
      .subscribe({ query: PROGRESS, variables: { input: { prompt: "SMA crossover 5/20", name: "browser" } } })
      .subscribe({
        next: ({ data }) => {
          const event = data.generateStrategyProgress;
          stages.push(event.result ? `${event.stage}:${event.result.strategy.name}` : event.stage);
        },
        error: (error) => reject(new Error(JSON.stringify(describe(error)))),
        complete: () => resolve(stages),
      });
  });
  return out;
}

async function refused({ api }) {
  const client = makeClient(api, () => null);
  try {
    const answer = await client.query({ query: gql`query Adhoc { sampleDatasets }` });
    return { data: answer.data };
  } catch (error) {
    return describe(error);
  }
}

window.scenario = { everything, refused };
window.scenarioReady = true;
