// Actions of the Content API that the public role may call, so the benchmark
// needs no API token or user login.
const PUBLIC_ACTIONS = ['reel', 'like', 'comment'].flatMap((name) =>
  ['find', 'findOne', 'create'].map((action) => `api::${name}.${name}.${action}`)
);

module.exports = {
  register() {},

  async bootstrap({ strapi }) {
    const role = await strapi.db
      .query('plugin::users-permissions.role')
      .findOne({ where: { type: 'public' } });
    if (!role) {
      throw new Error('the users-permissions public role is missing; is @strapi/plugin-users-permissions installed?');
    }

    const permissions = strapi.db.query('plugin::users-permissions.permission');
    for (const action of PUBLIC_ACTIONS) {
      const granted = await permissions.findOne({ where: { action, role: role.id } });
      if (!granted) {
        await permissions.create({ data: { action, role: role.id } });
        strapi.log.info(`granted ${action} to the public role`);
      }
    }
  },
};
