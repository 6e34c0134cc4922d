// Listens on 127.0.0.1 unless HOST sets another address. The start-up banner stays,
// but the check for newer Strapi releases and remote data transfer are off.
module.exports = ({ env }) => ({
  host: env('HOST', '127.0.0.1'),
  port: env.int('PORT', 1337),
  app: {
    keys: env.array('APP_KEYS'),
  },
  logger: {
    updates: { enabled: false },
  },
  transfer: {
    remote: { enabled: false },
  },
});
