/** `npm run example`: the team-rooms example on http://127.0.0.1:3001 (PORT to change it). */
import { buildApp } from './app.js'

const app = await buildApp({ logger: true })
await app.listen({ port: Number(process.env.PORT ?? 3001), host: process.env.HOST ?? '127.0.0.1' })
