// The main flows through the typed client, against a running server:
//   npm run build && node dist/example.js http://127.0.0.1:8000/graphql
// It registers a new user (a random address), generates a strategy, lists strategies, checks
// code, backtests over a subscription, reads error codes, and prints a JSON summary; any failed
// check throws.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import WebSocket from "ws";

import {
  BacktestStrategyProgressDocument,
  GenerateStrategyDocument,
  MeDocument,
  RegisterDocument,
  StrategiesDocument,
  ValidateCodeDocument,
} from "./api/graphql";
import { ApiError, request, subscribe, subscriptionClient } from "./api-client";

async function main(): Promise<void> {
  const url = process.argv[2] ?? "http://127.0.0.1:8000/graphql";
  const email = `ts-${randomUUID().slice(0, 10)}@example.com`;
  const password = process.env.EXAMPLE_PASSWORD ?? "correct horse battery";

  const { registration } = await request(url, RegisterDocument, { email, password });
  assert.equal(registration.user.email, email);
  assert.equal(registration.user.isStaff, false);
  const token = registration.token;

  const { me } = await request(url, MeDocument, {}, token);
  assert.equal(me.id, registration.user.id);

  const prompt = "SMA crossover 10/30 with 2% stop loss and 4% take profit";
  const { generateStrategy } = await request(
    url,
    GenerateStrategyDocument,
    { input: { prompt, name: "TypeScript cross" } },
    token,
  );
  const strategy = generateStrategy.strategy;
  assert.ok(strategy, generateStrategy.generationLog.errorMessage ?? "no strategy");
  assert.equal(generateStrategy.generationLog.status, "SUCCESS");
  assert.equal(strategy.status, "VALIDATED");
  assert.equal(strategy.name, "TypeScript cross");
  assert.ok(strategy.validationResults?.valid);

  const { strategies } = await request(url, StrategiesDocument, { pageSize: 10 }, token);
  assert.deepEqual(
    strategies.items.map((item) => item.id),
    [strategy.id],
  );
  assert.equal(strategies.totalCount, 1);
  await assert.rejects(
    request(url, StrategiesDocument, { pageSize: 0 }, token),
    (error: unknown) => error instanceof ApiError && error.code === "BAD_USER_INPUT",
  );

  const { validateCode } = await request(
    url,
    ValidateCodeDocument,
    { code: strategy.generatedCode },
    token,
  );
  assert.ok(validateCode.valid && validateCode.hasFunction);
  const refused = await request(
    url,
    ValidateCodeDocument,
    { code: "import os\n\ndef execute_strategy(market_data, strategy_params):\n    return os.environ\n", smokeTest: false },
    token,
  );
  assert.equal(refused.validateCode.valid, false);
  assert.ok(refused.validateCode.errors.length > 0);

  const client = subscriptionClient(url.replace(/^http/, "ws"), token, WebSocket);
  let events = 0;
  let barsDone = 0;
  let bars = 0;
  try {
    for await (const { backtestStrategyProgress: event } of subscribe(
      client,
      BacktestStrategyProgressDocument,
      { id: strategy.id, input: { sample: "trending_daily" } },
    )) {
      events += 1;
      assert.ok(event.barsDone >= barsDone, "progress only goes forward");
      barsDone = event.barsDone;
      if (event.result) {
        assert.equal(event.barsDone, event.totalBars);
        assert.equal(event.result.strategy.id, strategy.id);
        bars = event.result.bars;
      }
    }
  } finally {
    await client.dispose();
  }
  assert.ok(bars > 0, "the last event carries the result");

  const elsewhere = subscriptionClient(url.replace(/^http/, "ws"), token, WebSocket);
  try {
    const missing = subscribe(elsewhere, BacktestStrategyProgressDocument, {
      id: randomUUID(),
      input: { sample: "trending_daily" },
    });
    await assert.rejects(
      missing.next(),
      (error: unknown) => error instanceof ApiError && error.code === "NOT_FOUND",
    );
  } finally {
    await elsewhere.dispose();
  }

  console.log(JSON.stringify({ email, strategyId: strategy.id, events, bars }));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
