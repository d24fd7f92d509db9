// @ts-check
import effect from "@effect/eslint-plugin"
import tseslint from "typescript-eslint"

export default tseslint.config(
  { ignores: ["node_modules/", "dist/", ".fixtures/", ".bench/", "scratch/", "coverage/"] },
  ...tseslint.configs.recommended,
  {
    plugins: { "@effect": effect },
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
      // Effect's barrel ("effect") is the documented import style of this project.
      "@effect/no-import-from-barrel-package": "off",
      "no-console": "error",
      // `declare namespace X { interface Options }` is how Effect modules group their types.
      "@typescript-eslint/no-namespace": ["error", { allowDeclarations: true }]
    }
  },
  {
    // Entry points and test fixtures talk to a terminal on purpose.
    files: ["scripts/**", "bin/**", "examples/**", "test/**"],
    rules: { "no-console": "off" }
  }
)
