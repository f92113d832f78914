import { Type } from 'typebox'

export const apiConfigSchema = Type.Object({
  FERRY_HTTP_PORT: Type.Integer({ default: 8080, minimum: 0, maximum: 65535, description: 'Port of the gateway HTTP API and dashboard; 0 disables it.' }),
  FERRY_HTTP_HOST: Type.String({ default: '0.0.0.0', description: 'Address the HTTP API listens on.' }),
  FERRY_API_TOKEN: Type.Optional(Type.String({ minLength: 16, description: 'Bearer token for state-changing API routes (LED). Without it those routes are refused. At least 16 characters; no default.' })),
})
