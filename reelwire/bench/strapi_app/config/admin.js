// The admin panel is never built or served, because the benchmark only uses
// the Content API. The secrets must still be set for the server to start.
// The AI features call Strapi's servers when a license enables them, so they are off.
module.exports = ({ env }) => ({
  serveAdminPanel: false,
  autoOpen: false,
  ai: {
    enabled: false,
  },
  auth: {
    secret: env('ADMIN_JWT_SECRET'),
  },
  apiToken: {
    salt: env('API_TOKEN_SALT'),
  },
  transfer: {
    token: {
      salt: env('TRANSFER_TOKEN_SALT'),
    },
  },
  secrets: {
    encryptionKey: env('ENCRYPTION_KEY'),
  },
});
