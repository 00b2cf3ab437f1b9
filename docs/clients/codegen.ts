import type { CodegenConfig } from "@graphql-codegen/cli";

// Run from this folder: npx graphql-codegen --config codegen.ts (writes src/api/).
const config: CodegenConfig = {
  schema: "../../schema.graphql",
  documents: ["../operations/*.graphql"],
  generates: {
    "src/api/": {
      preset: "client",
      presetConfig: { fragmentMasking: false },
      config: {
        // Every custom scalar of schema.graphql, as it travels in JSON.
        strictScalars: true,
        scalars: {
          BigInt: "number",
          Date: "string",
          DateTime: "string",
          JSON: "unknown",
          UUID: "string",
        },
        enumsAsTypes: true,
        useTypeImports: true,
      },
    },
  },
};

export default config;
