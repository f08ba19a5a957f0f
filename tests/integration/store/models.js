// StudyConnect's Sequelize models as the seeds (002, 003) use them: User (findByPk, profile
// fields), UserPresence (upsert {userId, status, lastActivity}), StudyRoom (name, description,
// isPublic, createdBy; addParticipant through a role), Message ({roomId, senderId, recipientId,
// text, type: 'room' | 'direct'}, include sender). Sequelize defaults: quoted camelCase
// columns, createdAt/updatedAt, plural table names.
import { Sequelize, DataTypes } from 'sequelize';

export function defineModels(url) {
  const sequelize = new Sequelize(url, { logging: false });
  const User = sequelize.define('User', {
    firstName: DataTypes.STRING,
    lastName: DataTypes.STRING,
    email: { type: DataTypes.STRING, unique: true },
    role: DataTypes.STRING,
    avatar: DataTypes.STRING,
  });
  const UserPresence = sequelize.define('UserPresence', {
    userId: { type: DataTypes.INTEGER, primaryKey: true },
    status: DataTypes.ENUM('online', 'offline'),
    lastActivity: DataTypes.DATE,
  });
  const StudyRoom = sequelize.define('StudyRoom', {
    name: { type: DataTypes.STRING, allowNull: false },
    description: DataTypes.TEXT,
    isPublic: { type: DataTypes.BOOLEAN, defaultValue: true },
    createdBy: DataTypes.INTEGER,
  });
  const RoomParticipant = sequelize.define('RoomParticipant', {
    role: { type: DataTypes.STRING, defaultValue: 'member' },
  });
  const Message = sequelize.define('Message', {
    text: { type: DataTypes.TEXT, allowNull: false },
    type: { type: DataTypes.ENUM('room', 'direct'), allowNull: false },
  });
  UserPresence.belongsTo(User, { foreignKey: 'userId' });
  StudyRoom.belongsToMany(User, { through: RoomParticipant, as: 'participants', foreignKey: 'roomId', otherKey: 'userId' });
  User.belongsToMany(StudyRoom, { through: RoomParticipant, foreignKey: 'userId', otherKey: 'roomId' });
  Message.belongsTo(User, { as: 'sender', foreignKey: 'senderId' });
  Message.belongsTo(User, { as: 'recipient', foreignKey: 'recipientId' });
  Message.belongsTo(StudyRoom, { foreignKey: 'roomId' });
  return { sequelize, User, UserPresence, StudyRoom, RoomParticipant, Message };
}
