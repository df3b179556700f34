/** The `from` of `data` the host application sends (not a user id). No Node imports: the browser client shares this file. */
export const SERVER_SENDER = 'server'
