import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      '**/.tools/**',
      '**/bin/**',
      '**/.devstack/**',
      'charts/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-empty': ['error', { allowEmptyCatch: false }],
    },
  },
  // Dependencies point one way: features use http/ and platform/, and only a feature's routes.ts
  // speaks HTTP; domain code throws DomainErrors that http/errors.ts maps to problem+json.
  {
    files: ['service/src/features/**/*.ts'],
    ignores: ['service/src/features/**/routes.ts', 'service/src/features/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/http/*'],
              message: "only a feature's routes.ts speaks HTTP: throw a DomainError (src/domain/errors.ts)",
            },
          ],
        },
      ],
    },
  },
  {
    files: ['service/src/{http,platform,domain}/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/features/**'], message: 'http/, platform/ and domain/ never depend on a feature' },
          ],
        },
      ],
    },
  },
  prettier,
);
